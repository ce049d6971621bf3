"""Settings validation per profile, run in a fresh interpreter the way a process starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "SECRET_KEY": "production-secret-key-for-tests-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DATABASE_URL": "postgres://ntzs@127.0.0.1:5432/ntzs",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "CHAIN_ID": "84532",
    "BASE_SEPOLIA_RPC_URL": "https://sepolia.base.org",
    "MINTER_PRIVATE_KEY": "0x" + "1" * 64,
    "ZENOPAY_API_KEY": "zp-key",
    "APP_URL": "https://ntzs.example",
    "ALLOWED_HOSTS": "ntzs.example",
}
PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.PROFILE, s.CHAIN_ID, s.DAILY_ISSUANCE_CAP_TZS, s.SAFE_MINT_THRESHOLD_TZS, "
    "s.MINT_CONFIRMATIONS, s.ZENOPAY_SANDBOX, s.MINTER_MIN_GAS_WEI)"
)


def _start(profile: str, env: dict, var_dir: Path) -> subprocess.CompletedProcess:
    clean = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": f"config.settings.{profile}",
        "NTZS_VAR_DIR": str(var_dir),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def start(tmp_path):
    return lambda profile, env: _start(profile, env, tmp_path)


def test_production_starts_with_everything_it_needs(start):
    result = start("production", PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "production",
        "84532",
        "100000000",
        "9000",
        "3",
        "False",
        str(10**15),
    ]


@pytest.mark.parametrize(
    "missing",
    [
        "MINTER_PRIVATE_KEY",
        "CHAIN_ID",
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "ZENOPAY_API_KEY",
    ],
)
def test_production_refuses_to_start_without_a_required_variable(start, missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = start("production", env)
    assert result.returncode != 0
    assert f"{missing} is required in the production profile" in result.stderr


def test_production_accepts_the_runbook_alias_for_app_url(start):
    env = {k: v for k, v in PRODUCTION.items() if k != "APP_URL"}
    env["NEXT_PUBLIC_APP_URL"] = "https://ntzs.example"
    assert start("production", env).returncode == 0


@pytest.mark.parametrize("value", ["1e8", "lots", "12.5", "-5"])
def test_a_malformed_daily_cap_is_refused_with_a_sentence(start, value):
    result = start("production", {**PRODUCTION, "DAILY_ISSUANCE_CAP_TZS": value})
    assert result.returncode != 0
    assert "DAILY_ISSUANCE_CAP_TZS must be" in result.stderr


def test_a_malformed_private_key_is_refused_without_echoing_it(start):
    secret = "0xnot-a-key-but-still-a-secret"
    result = start("production", {**PRODUCTION, "MINTER_PRIVATE_KEY": secret})
    assert result.returncode != 0
    assert "MINTER_PRIVATE_KEY must be a 32-byte hex private key" in result.stderr
    assert secret not in result.stderr


def test_the_sandbox_is_refused_in_production(start):
    result = start("production", {**PRODUCTION, "ZENOPAY_SANDBOX": "true"})
    assert result.returncode != 0
    assert "ZENOPAY_SANDBOX=true is allowed only in the local and test profiles" in result.stderr


def test_the_sandbox_is_refused_locally_on_another_chain(start):
    result = start("local", {"CHAIN_ID": "84532", "ZENOPAY_SANDBOX": "true"})
    assert result.returncode != 0
    assert "CHAIN_ID 84532" in result.stderr


def test_local_runs_with_zero_configuration(start):
    result = start("local", {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["local", "31337"]
    assert result.stdout.split()[4:6] == ["1", "True"]


@pytest.mark.parametrize("value", ["0", "-100", "nine thousand"])
def test_a_bad_safe_threshold_falls_back_to_the_default_never_to_zero(start, value):
    result = start("local", {"SAFE_MINT_THRESHOLD_TZS": value})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[3] == "9000"


def test_local_sqlite_uses_wal_immediate_transactions_and_a_busy_timeout(start, tmp_path):
    code = (
        "import django; django.setup(); from django.db import connection as c; "
        "cur = c.cursor(); cur.execute('PRAGMA journal_mode'); print(cur.fetchone()[0], "
        "c.settings_dict['OPTIONS']['transaction_mode'], "
        "c.settings_dict['OPTIONS']['timeout'])"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "NTZS_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "IMMEDIATE", "20"]


def test_production_profile_passes_check_deploy(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "NTZS_VAR_DIR": str(tmp_path),
        **PRODUCTION,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- Entry points: production unless told otherwise (DESIGN §2) ---------------------------

ENTRY_POINTS = {
    "wsgi": "import config.wsgi",
    "asgi": "import config.asgi",
    # What `celery -A config worker|beat` does first: import the package's app, then read
    # its configuration (which loads Django settings).
    "celery": "from config import celery_app; celery_app.conf.broker_url",
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_points_load_the_production_profile_when_none_is_exported(tmp_path, entry):
    code = (
        f"{ENTRY_POINTS[entry]}; import os; from django.conf import settings as s; "
        "print(os.environ['DJANGO_SETTINGS_MODULE'], s.PROFILE, s.DEBUG, "
        "s.SESSION_COOKIE_SECURE)"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "NTZS_VAR_DIR": str(tmp_path),
        **PRODUCTION,
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config.settings.production", "production", "False", "True"]


def test_the_celery_app_started_without_production_variables_refuses_to_start(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "NTZS_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_POINTS["celery"]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is required in the production profile" in result.stderr


def test_manage_py_still_defaults_to_the_local_profile(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "NTZS_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "--no-imports",
            "-c",
            "from django.conf import settings; print(settings.PROFILE)",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["local"]


def test_the_local_profile_refuses_a_chain_other_than_the_local_one(start):
    result = start("local", {"CHAIN_ID": "84532"})
    assert result.returncode != 0
    assert (
        "The local profile runs only on the local chain (CHAIN_ID 31337), not on CHAIN_ID 84532"
    ) in result.stderr


def test_the_local_profile_accepts_the_local_chain_id(start):
    result = start("local", {"CHAIN_ID": "31337"})
    assert result.returncode == 0, result.stderr


# --- Production secrets and hosts ---------------------------------------------------------


def test_production_refuses_a_secret_key_shorter_than_50_characters(start):
    short = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"  # 49 characters
    result = start("production", {**PRODUCTION, "SECRET_KEY": short})
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters in the production profile" in result.stderr
    assert short not in result.stderr


def test_production_accepts_a_secret_key_of_exactly_50_characters(start):
    key = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
    assert len(key) == 50
    result = start("production", {**PRODUCTION, "SECRET_KEY": key})
    assert result.returncode == 0, result.stderr


def test_production_refuses_a_secret_key_with_fewer_than_5_distinct_characters(start):
    result = start("production", {**PRODUCTION, "SECRET_KEY": "abcd" * 20})
    assert result.returncode != 0
    assert (
        "SECRET_KEY must contain at least 5 different characters in the production profile"
        in result.stderr
    )


@pytest.mark.parametrize("hosts", ["*", "ntzs.example,*", "*.ntzs.example"])
def test_production_refuses_a_wildcard_in_allowed_hosts(start, hosts):
    result = start("production", {**PRODUCTION, "ALLOWED_HOSTS": hosts})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must not contain '*' in the production profile" in result.stderr


# --- Mints in flight and RPC batches (issue 10) -------------------------------------------


def _print(profile: str, env: dict, var_dir: Path, names: str) -> subprocess.CompletedProcess:
    clean = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": f"config.settings.{profile}",
        "NTZS_VAR_DIR": str(var_dir),
        **env,
    }
    code = f"import django; django.setup(); from django.conf import settings as s; print({names})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_mints_in_flight_default_to_16_in_production_and_64_locally(tmp_path):
    names = "s.MINT_MAX_IN_FLIGHT, s.RPC_BATCH_MAX"
    production = _print("production", PRODUCTION, tmp_path, names)
    local = _print("local", {}, tmp_path, names)
    assert production.returncode == 0, production.stderr
    assert production.stdout.split() == ["16", "50"]
    assert local.stdout.split() == ["64", "50"], local.stderr


def test_production_refuses_more_than_64_mints_in_flight(tmp_path):
    names = "s.MINT_MAX_IN_FLIGHT"
    allowed = _print("production", {**PRODUCTION, "MINT_MAX_IN_FLIGHT": "64"}, tmp_path, names)
    refused = _print("production", {**PRODUCTION, "MINT_MAX_IN_FLIGHT": "65"}, tmp_path, names)
    local = _print("local", {"MINT_MAX_IN_FLIGHT": "512"}, tmp_path, names)
    assert allowed.stdout.split() == ["64"], allowed.stderr
    assert refused.returncode != 0
    assert "MINT_MAX_IN_FLIGHT is 65, above 64" in refused.stderr
    assert local.stdout.split() == ["512"], local.stderr


POOLER_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "d = s.DATABASES['default']; "
    "print(s.DATABASE_POOLER, d['DISABLE_SERVER_SIDE_CURSORS'], d['CONN_MAX_AGE'], "
    "d['CONN_HEALTH_CHECKS'])"
)


@pytest.mark.parametrize(
    ("pooler", "expected"),
    [
        (None, "session False 60 True"),
        ("session", "session False 60 True"),
        ("transaction", "transaction True 60 True"),
    ],
)
def test_transaction_pooling_turns_server_side_cursors_off(tmp_path, pooler, expected):
    env = {**PRODUCTION, **({"DATABASE_POOLER": pooler} if pooler else {})}
    result = subprocess.run(
        [sys.executable, "-c", POOLER_SETTINGS],
        cwd=REPO,
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "NTZS_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_an_unknown_pooler_mode_is_refused_with_a_sentence(start):
    result = start("production", {**PRODUCTION, "DATABASE_POOLER": "statement"})
    assert result.returncode != 0
    assert "DATABASE_POOLER" in result.stderr and "must be session" in result.stderr


def test_the_procfile_runs_gunicorn_with_the_committed_config_and_both_queues():
    procfile = dict(
        line.split(":", 1) for line in (REPO / "Procfile").read_text().splitlines() if line
    )
    assert "--config gunicorn.conf.py" in procfile["web"]
    assert "--queues default,mint" in procfile["worker"]
    assert procfile["beat"].strip().startswith("celery -A config beat")


def test_the_gunicorn_config_sizes_workers_from_the_cpu_count(tmp_path):
    script = (
        "import runpy, multiprocessing; c = runpy.run_path('gunicorn.conf.py'); "
        "print(c['workers'] == multiprocessing.cpu_count() * 2 + 1, c['timeout'], c['accesslog'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "75", "-"]
