"""The demo commands (known passwords, a public dev key acting as Safe owner) run only in the
local or test profile on the local chain (DESIGN §11)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User

DEMO_COMMANDS = {
    "demo_users": [],
    "demo_deposit": ["--amount", "5000"],
    "demo_safe_execute": ["00000000-0000-0000-0000-000000000000", "--actor", "x@ntzs.local"],
}


@pytest.mark.django_db
@pytest.mark.parametrize("command", sorted(DEMO_COMMANDS))
def test_demo_commands_refuse_on_a_chain_other_than_the_local_one(settings, command):
    settings.CHAIN_ID = 84532
    with pytest.raises(CommandError) as refused:
        call_command(command, *DEMO_COMMANDS[command])
    assert str(refused.value) == (
        f"{command} runs only in the local or test profile on the local chain (CHAIN_ID 31337); "
        "this is the test profile with CHAIN_ID 84532."
    )
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("command", sorted(DEMO_COMMANDS))
def test_demo_commands_refuse_in_the_production_profile_even_on_the_local_chain(settings, command):
    settings.PROFILE = "production"
    settings.CHAIN_ID = 31337
    with pytest.raises(CommandError, match="runs only in the local or test profile"):
        call_command(command, *DEMO_COMMANDS[command])
    assert not User.objects.exists()


@pytest.mark.django_db
def test_demo_users_run_in_the_test_profile_on_the_local_chain(settings, capsys):
    settings.CHAIN_ID = 31337
    call_command("demo_users")
    assert "super@ntzs.local" in capsys.readouterr().out
    assert User.objects.filter(email="customer@ntzs.local").exists()


def test_demo_users_exits_non_zero_with_one_sentence_in_production(tmp_path):
    from tests.config.test_settings import PRODUCTION, REPO

    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "NTZS_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        **PRODUCTION,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "demo_users"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert (
        "demo_users runs only in the local or test profile on the local chain (CHAIN_ID "
        "31337); this is the production profile with CHAIN_ID 84532."
    ) in result.stderr


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")  # read, never connected
@pytest.mark.parametrize("command", sorted(DEMO_COMMANDS))
def test_demo_commands_refuse_a_database_on_another_machine(settings, command):
    settings.CHAIN_ID = 31337
    settings.DATABASES = {
        "default": {**settings.DATABASES["default"], "HOST": "db.production.example"}
    }
    with pytest.raises(CommandError, match="not db.production.example"):
        call_command(command, *DEMO_COMMANDS[command])
    assert not User.objects.exists()
