"""The staff second factor (STAFF_OTP_REQUIRED, on in the test profile as in production) and
the staff idle timeout."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth import get_user
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from backstage.admin import site as backstage_site
from core.models import AdminAction
from tests.factories import PASSWORD, compliance_officer, customer, super_admin

pytestmark = pytest.mark.django_db


def _backstage_urls() -> list[str]:
    urls = [reverse("admin:index")]
    for model in backstage_site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    return urls


def _code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def _password_login(client: Client, user) -> None:
    response = client.post(
        reverse("admin:login"),
        {"username": user.email, "password": PASSWORD, "next": reverse("admin:index")},
    )
    assert response.status_code == 302


def test_production_like_setting_requires_the_second_factor(settings):
    assert settings.STAFF_OTP_REQUIRED is True


def test_staff_without_an_authenticator_cannot_open_any_backstage_page(client):
    client.force_login(super_admin())

    for url in _backstage_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("staff_otp_enrol")), url


def test_staff_with_an_unverified_session_is_sent_to_the_code_page(client):
    neema = compliance_officer()
    TOTPDevice.objects.create(user=neema, name="phone", confirmed=True)
    client.force_login(neema)

    for url in _backstage_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("staff_otp_verify")), url
    # Staff actions (an admin POST) are refused just the same.
    response = client.post(
        reverse("admin:accounts_kyccase_changelist"),
        {"action": "approve_cases", "_selected_action": []},
    )
    assert response.url.startswith(reverse("staff_otp_verify"))


def test_staff_with_a_verified_second_factor_opens_every_backstage_page(client, staff_otp_login):
    # A super admin (the role sees every registered page), with the superuser flag too.
    staff_otp_login(client, super_admin(is_superuser=True))

    for url in _backstage_urls():
        assert client.get(url).status_code == 200, url


def test_staff_without_second_factor_may_still_use_customer_pages(client):
    client.force_login(super_admin())

    assert client.get(reverse("accounts:home")).status_code == 200


def test_second_factor_not_required_when_the_setting_is_off(client, settings):
    settings.STAFF_OTP_REQUIRED = False
    client.force_login(super_admin())

    assert client.get(reverse("admin:index")).status_code == 200


def test_backstage_login_asks_the_password_then_a_real_totp_code(client):
    salim = super_admin()
    device = TOTPDevice.objects.create(user=salim, name="phone", confirmed=True)

    _password_login(client, salim)
    response = client.get(reverse("admin:index"))
    assert response.url.startswith(reverse("staff_otp_verify"))

    wrong = client.post(
        reverse("staff_otp_verify"), {"token": "000000" if _code(device) != "000000" else "111111"}
    )
    assert wrong.status_code == 200
    assert client.get(reverse("admin:index")).status_code == 302

    # django-otp slows guessing after a failure (1 s, doubling); a person retries later.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)):
        response = client.post(
            reverse("staff_otp_verify"), {"token": _code(device), "next": reverse("admin:index")}
        )
        assert response.status_code == 302
        assert response.url == reverse("admin:index")
        assert client.get(reverse("admin:index")).status_code == 200


def test_enrolment_shows_a_qr_code_and_secret_then_recovery_codes_once(client):
    salim = super_admin()
    client.force_login(salim)

    page = client.get(reverse("staff_otp_enrol"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in body and "<path" in body
    assert "style=" not in body.split("<svg", 1)[1].split("</svg>", 1)[0]
    device = TOTPDevice.objects.get(user=salim, confirmed=False)
    secret = page.context["secret"].replace(" ", "")
    assert secret and secret in body.replace(" ", "")

    done = client.post(reverse("staff_otp_enrol"), {"token": _code(device)})

    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10
    assert all(code in done.content.decode() for code in codes)
    assert sorted(
        StaticToken.objects.filter(device__user=salim).values_list("token", flat=True)
    ) == sorted(codes)
    device.refresh_from_db()
    assert device.confirmed
    assert AdminAction.objects.filter(actor=salim, action="staff_otp.enrol").count() == 1
    assert client.get(reverse("admin:index")).status_code == 200
    # Shown once: the enrolment page now leads to the code page, never to the codes again.
    again = Client()
    again.force_login(salim)
    response = again.get(reverse("staff_otp_enrol"))
    assert response.url.startswith(reverse("staff_otp_verify"))


def test_enrolment_refuses_a_wrong_code(client):
    salim = super_admin()
    client.force_login(salim)
    client.get(reverse("staff_otp_enrol"))
    device = TOTPDevice.objects.get(user=salim)

    response = client.post(
        reverse("staff_otp_enrol"), {"token": "123456" if _code(device) != "123456" else "654321"}
    )

    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=salim, confirmed=True).exists()
    assert client.get(reverse("admin:index")).status_code == 302


def test_a_recovery_code_works_once(client):
    salim = super_admin()
    client.force_login(salim)
    client.get(reverse("staff_otp_enrol"))
    device = TOTPDevice.objects.get(user=salim)
    code = client.post(reverse("staff_otp_enrol"), {"token": _code(device)}).context["codes"][0]

    first = Client()
    _password_login(first, salim)
    response = first.post(reverse("staff_otp_verify"), {"token": code.upper()})
    assert response.status_code == 302
    assert first.get(reverse("admin:index")).status_code == 200

    second = Client()
    _password_login(second, salim)
    response = second.post(reverse("staff_otp_verify"), {"token": code})
    assert response.status_code == 200
    assert second.get(reverse("admin:index")).status_code == 302
    assert StaticToken.objects.filter(device__user=salim).count() == 9


def test_staff_session_ends_after_thirty_minutes_idle(client, staff_otp_login, settings):
    start = dt.datetime.now(dt.UTC)
    with time_machine.travel(start, tick=False):
        staff_otp_login(client, super_admin())
        assert client.get(reverse("admin:index")).status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=29), tick=False):
        assert client.get(reverse("admin:index")).status_code == 200  # activity keeps it
    with time_machine.travel(start + dt.timedelta(minutes=29 + 31), tick=False):
        response = client.get(reverse("admin:index"))
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
        assert not get_user(client).is_authenticated
        assert client.get(reverse("accounts:home")).status_code == 302


def test_customer_sessions_have_no_staff_idle_timeout(client):
    start = dt.datetime.now(dt.UTC)
    with time_machine.travel(start, tick=False):
        client.force_login(customer())
        assert client.get(reverse("accounts:home")).status_code == 200
    with time_machine.travel(start + dt.timedelta(hours=2), tick=False):
        assert client.get(reverse("accounts:home")).status_code == 200


def test_otp_pages_are_for_staff_only(client):
    client.force_login(customer())

    response = client.get(reverse("staff_otp_enrol"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert not TOTPDevice.objects.exists()


def test_next_parameter_cannot_send_staff_to_another_site(client):
    salim = super_admin()
    device = TOTPDevice.objects.create(user=salim, name="phone", confirmed=True)
    client.force_login(salim)

    response = client.post(
        reverse("staff_otp_verify"), {"token": _code(device), "next": "https://evil.example/"}
    )

    assert response.status_code == 302
    assert response.url == reverse("admin:index")
    assert re.match(r"^/", response.url)
