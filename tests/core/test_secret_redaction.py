"""Secrets never reach a log line or an error report (DESIGN §10): every secret setting,
including the passwords inside DATABASE_URL, REDIS_URL and EMAIL_URL and API keys inside RPC
URLs. The log test starts a process from the environment, the way the services start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.views.debug import get_exception_reporter_class

from core.logging import REDACTED, SecretsExceptionReporterFilter

REPO = Path(__file__).resolve().parents[2]

SECRETS = {
    "SECRET_KEY": "sk-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP",
    "MINTER_PRIVATE_KEY": "0x" + "ab12" * 16,
    "OPERATOR_PRIVATE_KEY": "0x" + "cd34" * 16,
    "DEPLOYER_PRIVATE_KEY": "0x" + "ef56" * 16,
    "ZENOPAY_API_KEY": "zp-live-key-77aa88bb99cc",
    "METRICS_TOKEN": "metrics-token-5f5f5f5f5f",
    "SENTRY_DSN": "https://sentrypublickey123@o42.ingest.sentry.io/4242",
}
DB_PASSWORD = "db-p@ss:word/42"  # characters a URL must percent-encode
REDIS_PASSWORD = "redis-pass-0a0b0c"
EMAIL_PASSWORD = "mail-pass-9z8y7x"
RPC_PATH_KEY = "alchemykeyAbCdEf012345"
RPC_QUERY_KEY = "infuraqueryKey6789"
URLS = {
    "DATABASE_URL": "postgres://ntzs:db-p%40ss%3Aword%2F42@db.example:5432/ntzs",
    "REDIS_URL": f"redis://:{REDIS_PASSWORD}@redis.example:6379/0",
    "EMAIL_URL": f"smtp+tls://mailer:{EMAIL_PASSWORD}@mail.example:587",
    "BASE_SEPOLIA_RPC_URL": f"https://base-sepolia.g.alchemy.com/v2/{RPC_PATH_KEY}",
    "BASE_SEPOLIA_RPC_URL_BACKUP": f"https://rpc.example/base?apikey={RPC_QUERY_KEY}",
}
# Each value as someone might log it, and the setting it comes from.
LOGGED = {
    **{name: value for name, value in SECRETS.items()},
    "MINTER_PRIVATE_KEY without 0x": SECRETS["MINTER_PRIVATE_KEY"][2:],
    "SENTRY_DSN key": "sentrypublickey123",
    "database password": DB_PASSWORD,
    "database password, encoded": "db-p%40ss%3Aword%2F42",
    "DATABASE_URL": URLS["DATABASE_URL"],
    "redis password": REDIS_PASSWORD,
    "REDIS_URL": URLS["REDIS_URL"],
    "email password": EMAIL_PASSWORD,
    "EMAIL_URL": URLS["EMAIL_URL"],
    "RPC path key": RPC_PATH_KEY,
    "BASE_SEPOLIA_RPC_URL": URLS["BASE_SEPOLIA_RPC_URL"],
    "RPC query key": RPC_QUERY_KEY,
    "BASE_SEPOLIA_RPC_URL_BACKUP": URLS["BASE_SEPOLIA_RPC_URL_BACKUP"],
}
SECRET_FRAGMENTS = [
    *SECRETS.values(),
    SECRETS["MINTER_PRIVATE_KEY"][2:],
    "sentrypublickey123",
    DB_PASSWORD,
    "db-p%40ss%3Aword%2F42",
    REDIS_PASSWORD,
    EMAIL_PASSWORD,
    RPC_PATH_KEY,
    RPC_QUERY_KEY,
]

LOG_EVERY_VALUE = """
import json, logging, sys
import django
django.setup()
log = logging.getLogger("ntzs.redaction")
for label, value in json.loads(sys.argv[1]).items():
    log.error("%s is %s", label, value)
try:
    raise RuntimeError("cannot reach " + json.loads(sys.argv[1])["REDIS_URL"])
except RuntimeError:
    log.exception("with a traceback")
"""


@pytest.fixture(scope="module")
def logged_output(tmp_path_factory) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "NTZS_VAR_DIR": str(tmp_path_factory.mktemp("var")),
        **SECRETS,
        **URLS,
    }
    result = subprocess.run(
        [sys.executable, "-c", LOG_EVERY_VALUE, json.dumps(LOGGED)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("label", sorted(LOGGED))
def test_a_log_line_carrying_a_secret_is_redacted(logged_output, label):
    line = next(line for line in logged_output.splitlines() if f" {label} is " in line)
    assert REDACTED in line
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in line


def test_hosts_stay_readable_once_credentials_are_redacted(logged_output):
    assert "redis://:[redacted]@redis.example:6379/0" in logged_output
    assert "https://base-sepolia.g.alchemy.com/v2/[redacted]" in logged_output
    assert "https://rpc.example/base?apikey=[redacted]" in logged_output


def test_a_logged_traceback_is_redacted(logged_output):
    assert "Traceback" in logged_output
    assert "RuntimeError: cannot reach redis://:[redacted]@redis.example" in logged_output
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in logged_output


def test_error_reports_hide_every_secret_setting(settings):
    settings.REDIS_URL = URLS["REDIS_URL"]
    settings.BASE_SEPOLIA_RPC_URL = URLS["BASE_SEPOLIA_RPC_URL"]
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = URLS["BASE_SEPOLIA_RPC_URL_BACKUP"]
    settings.SENTRY_DSN = SECRETS["SENTRY_DSN"]
    settings.ZENOPAY_API_KEY = SECRETS["ZENOPAY_API_KEY"]
    settings.EMAIL_HOST_PASSWORD = EMAIL_PASSWORD
    safe = SecretsExceptionReporterFilter().get_safe_settings()
    hidden = SecretsExceptionReporterFilter.cleansed_substitute
    for name in (
        "REDIS_URL",
        "BASE_SEPOLIA_RPC_URL",
        "BASE_SEPOLIA_RPC_URL_BACKUP",
        "SENTRY_DSN",
        "ZENOPAY_API_KEY",
        "EMAIL_HOST_PASSWORD",
        "SECRET_KEY",
        "MINTER_PRIVATE_KEY",
        "METRICS_TOKEN",
        "CELERY_BROKER_URL",
    ):
        assert safe[name] == hidden, name
    assert safe["CACHES"]["default"]["LOCATION"] == hidden
    assert safe["DATABASES"] == hidden


def test_an_error_report_hides_secrets_in_variables_and_the_message(settings, rf):
    settings.ZENOPAY_API_KEY = SECRETS["ZENOPAY_API_KEY"]
    settings.REDIS_URL = URLS["REDIS_URL"]
    key = SECRETS["ZENOPAY_API_KEY"]
    headers = {"Authorization": f"Bearer {key}"}  # a local variable of the failing frame
    try:
        raise RuntimeError(f"refused with headers {headers} at {URLS['REDIS_URL']}")
    except RuntimeError:
        request = rf.get("/")
        reporter = get_exception_reporter_class(request)(request, *sys.exc_info())
        text = reporter.get_traceback_text()
        html = reporter.get_traceback_html()
    assert reporter.filter.__class__ is SecretsExceptionReporterFilter
    for report in (text, html):
        assert key not in report
        assert REDIS_PASSWORD not in report
        assert "refused with headers" in report
