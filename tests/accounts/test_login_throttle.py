"""Login throttling (accounts.throttle) on /login/ and /backstage/login/, in the shared cache."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts import throttle
from tests.factories import PASSWORD, customer, super_admin

REPO = Path(__file__).resolve().parents[2]
LOGIN_PAGES = ["accounts:login", "admin:login"]

# A second process: same settings, same Redis, same (test) database; it logs in through the
# same forms with Django's test client.
SECOND_PROCESS = r"""
import json, sys
import django
django.setup()
from django.test import Client
from django.urls import reverse
email, password = sys.argv[1], sys.argv[2]
wrong_backstage, wrong_login = int(sys.argv[3]), int(sys.argv[4])
client = Client()
for _ in range(wrong_backstage):
    client.post(reverse("admin:login"), {"username": email, "password": "wrong-password"})
for _ in range(wrong_login):
    client.post(reverse("accounts:login"), {"username": email, "password": "wrong-password"})
result = {}
for page in ("admin:login", "accounts:login"):
    response = client.post(reverse(page), {"username": email, "password": password})
    result[page] = {"status": response.status_code,
                    "locked": "locked" in response.content.decode(),
                    "logged_in": "_auth_user_id" in client.session}
print(json.dumps(result))
"""


def _second_process(email: str, *, wrong_backstage: int, wrong_login: int) -> dict:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run(  # our own interpreter and script
        [
            sys.executable,
            "-c",
            SECOND_PROCESS,
            email,
            PASSWORD,
            str(wrong_backstage),
            str(wrong_login),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _login(client: Client, page: str, email: str, password: str, **extra):
    return client.post(reverse(page), {"username": email, "password": password}, **extra)


@pytest.mark.django_db(transaction=True)
def test_thirty_wrong_passwords_lock_both_login_pages_across_processes_until_it_expires():
    salim = super_admin()
    here = Client()
    for _ in range(5):
        _login(here, "accounts:login", salim.email, "wrong-password")

    # 5 failures here + 5 in another process reach the lockout only if the count is shared:
    # the other process is refused the right password on both pages.
    other = _second_process(salim.email, wrong_backstage=3, wrong_login=2)
    assert other == {
        page: {"status": 200, "locked": True, "logged_in": False}
        for page in ("admin:login", "accounts:login")
    }

    for _ in range(20):  # 30 wrong passwords in all
        _login(here, "admin:login", salim.email, "wrong-password")
    for page in LOGIN_PAGES:  # and this process sees the lock too
        response = _login(here, page, salim.email, PASSWORD)
        assert response.status_code == 200
        assert "locked" in response.content.decode()
        assert not get_user(here).is_authenticated

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=throttle.LOGIN_LOCKOUT_S - 60)
    with time_machine.travel(later):
        assert "locked" in _login(here, "admin:login", salim.email, PASSWORD).content.decode()

    expired = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=throttle.LOGIN_LOCKOUT_S + 5)
    with time_machine.travel(expired):
        for page in LOGIN_PAGES:
            client = Client()
            response = _login(client, page, salim.email, PASSWORD)
            assert response.status_code == 302, page
            assert get_user(client) == salim


@pytest.mark.django_db
def test_lockout_is_per_client_address_so_others_still_log_in(client):
    amina = customer()
    for _ in range(throttle.LOGIN_LOCKOUT_FAILURES):
        _login(client, "accounts:login", amina.email, "wrong", REMOTE_ADDR="198.51.100.7")

    locked = _login(client, "accounts:login", amina.email, PASSWORD, REMOTE_ADDR="198.51.100.7")
    elsewhere = _login(Client(), "accounts:login", amina.email, PASSWORD, REMOTE_ADDR="203.0.113.9")

    assert "locked" in locked.content.decode()
    assert elsewhere.status_code == 302


@pytest.mark.django_db
def test_an_ipv6_host_rotating_addresses_in_its_64_is_one_client(client):
    amina = customer()
    for n in range(throttle.LOGIN_LOCKOUT_FAILURES):
        _login(
            Client(), "accounts:login", amina.email, "wrong", REMOTE_ADDR=f"2001:db8:7:7::{n + 1}"
        )

    rotated = _login(
        Client(), "accounts:login", amina.email, PASSWORD, REMOTE_ADDR="2001:db8:7:7::ff"
    )
    other_network = _login(
        Client(), "accounts:login", amina.email, PASSWORD, REMOTE_ADDR="2001:db8:7:8::1"
    )

    assert "locked" in rotated.content.decode()
    assert other_network.status_code == 302


@pytest.mark.django_db
def test_account_under_attack_from_everywhere_is_slowed_but_never_locked(client):
    salim = super_admin()
    # The clock stands still: the 5-second slowdown must not run out while a loaded machine
    # works through the 60 attempts.
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False):
        for n in range(60):  # 60 failures from 30 addresses, none reaching its own lockout
            _login(
                Client(), "admin:login", salim.email, "wrong", REMOTE_ADDR=f"198.51.100.{n % 30}"
            )
        attacker = _login(Client(), "admin:login", salim.email, "wrong", REMOTE_ADDR="198.51.100.1")
    assert "wait" in attacker.content.decode()

    owner = Client()
    response = _login(owner, "admin:login", salim.email, PASSWORD, REMOTE_ADDR="203.0.113.50")
    assert response.status_code == 302
    assert get_user(owner) == salim

    with time_machine.travel(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=throttle.ACCOUNT_SLOWDOWN_S + 1)
    ):
        again = _login(Client(), "admin:login", salim.email, PASSWORD, REMOTE_ADDR="198.51.100.1")
        assert again.status_code == 302


@pytest.mark.django_db
def test_throttle_uses_the_forwarded_client_address_behind_a_trusted_proxy(client, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    amina = customer()
    for _ in range(throttle.LOGIN_LOCKOUT_FAILURES):
        _login(client, "accounts:login", amina.email, "wrong", HTTP_X_FORWARDED_FOR="198.51.100.7")

    # Same proxy (REMOTE_ADDR), another client: not locked; a forged prefix changes nothing.
    other = _login(
        Client(), "accounts:login", amina.email, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    forged = _login(
        Client(),
        "accounts:login",
        amina.email,
        PASSWORD,
        HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.7",
    )

    assert other.status_code == 302
    assert "locked" in forged.content.decode()


@pytest.mark.django_db
def test_unknown_accounts_are_throttled_like_known_ones(client):
    for _ in range(throttle.LOGIN_LOCKOUT_FAILURES):
        _login(client, "accounts:login", "nobody@ntzs.test", "wrong")

    response = _login(client, "accounts:login", "nobody@ntzs.test", "wrong")

    assert "locked" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_a_wrong_password_is_logged_without_the_address_and_the_lock_is_logged(page, caplog):
    user = super_admin() if page == "admin:login" else customer()
    client = Client()
    caplog.set_level("WARNING", logger="accounts")
    for _ in range(throttle.LOGIN_LOCKOUT_FAILURES):
        _login(client, page, user.email, "wrong-password")
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Login failed")]
    locked = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Login locked")]
    assert len(failed) == throttle.LOGIN_LOCKOUT_FAILURES
    assert failed[-1].endswith(
        f"failures_from_client={throttle.LOGIN_LOCKOUT_FAILURES} "
        f"failures_in_window={throttle.LOGIN_LOCKOUT_FAILURES}"
    )
    assert len(locked) == 1 and "client=127.0.0.1" in locked[0]
    assert all(user.email not in message for message in failed + locked)
