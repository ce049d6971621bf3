import re
import time

import pytest
import time_machine
from django.contrib.auth import get_user
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import throttle
from accounts.models import User
from tests.factories import PASSWORD, customer

pytestmark = pytest.mark.django_db


def test_password_reset_sends_an_email_with_a_working_link(client):
    customer(email="amina@ntzs.test")

    response = client.post(reverse("accounts:password_reset"), {"email": "amina@ntzs.test"})

    assert response.status_code == 302
    assert response.url == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["amina@ntzs.test"]
    link = re.search(r"https?://testserver(/\S+)", mail.outbox[0].body).group(1)

    response = client.get(link, follow=True)
    assert response.context["validlink"]
    response = client.post(
        response.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"},
    )
    assert response.status_code == 302
    assert response.url == reverse("accounts:password_reset_complete")
    assert User.objects.get(email="amina@ntzs.test").check_password("a-brand-new-passphrase")


def test_password_reset_for_an_unknown_email_sends_nothing_and_says_the_same(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@ntzs.test"})

    assert response.status_code == 302
    assert response.url == reverse("accounts:password_reset_done")
    assert mail.outbox == []
    assert not get_user(client).is_authenticated


def _reset_link(message) -> str:
    return re.search(r"(https?://\S+/password-reset/\S+/\S+/)", message.body).group(1)


def test_reset_links_carry_app_url_host_whatever_the_host_header(client, settings):
    settings.APP_URL = "https://ntzs.example.tz"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "evil.example"]
    customer(email="amina@ntzs.test")

    response = client.post(
        reverse("accounts:password_reset"), {"email": "amina@ntzs.test"}, HTTP_HOST="evil.example"
    )

    assert response.status_code == 302
    link = _reset_link(mail.outbox[0])
    assert link.startswith("https://ntzs.example.tz/password-reset/")
    assert "evil.example" not in mail.outbox[0].body


def test_a_reset_link_older_than_one_hour_is_refused(client, settings):
    assert settings.PASSWORD_RESET_TIMEOUT == 3600
    customer(email="amina@ntzs.test")
    client.post(reverse("accounts:password_reset"), {"email": "amina@ntzs.test"})
    path = "/" + _reset_link(mail.outbox[0]).split("/", 3)[3]

    # A timestamp, not an aware datetime: travelling to an aware datetime also switches the
    # process's TZ, which moves Django's naive reset-token clock by the zone offset.
    with time_machine.travel(time.time() + 59 * 60):
        assert Client().get(path, follow=True).context["validlink"] is True
    with time_machine.travel(time.time() + 61 * 60):
        response = Client().get(path, follow=True)

    assert response.context["validlink"] is False


def test_reset_requests_are_throttled_and_a_refusal_sends_nothing(client):
    customer(email="amina@ntzs.test")
    for _ in range(throttle.PASSWORD_RESET_MAX_PER_EMAIL):
        client.post(reverse("accounts:password_reset"), {"email": "amina@ntzs.test"})

    response = client.post(reverse("accounts:password_reset"), {"email": "amina@ntzs.test"})

    assert response.status_code == 200
    assert "Too many requests" in response.content.decode()
    assert len(mail.outbox) == throttle.PASSWORD_RESET_MAX_PER_EMAIL


def test_reset_requests_are_throttled_per_client_address(client):
    for n in range(throttle.PASSWORD_RESET_MAX_PER_CLIENT):
        client.post(reverse("accounts:password_reset"), {"email": f"p{n}@ntzs.test"})

    response = client.post(reverse("accounts:password_reset"), {"email": "other@ntzs.test"})

    assert "Too many requests" in response.content.decode()


def test_a_password_reset_unlocks_a_locked_login(client):
    customer(email="amina@ntzs.test")
    for _ in range(throttle.LOGIN_LOCKOUT_FAILURES):
        client.post(reverse("accounts:login"), {"username": "amina@ntzs.test", "password": "wrong"})
    locked = client.post(
        reverse("accounts:login"), {"username": "amina@ntzs.test", "password": PASSWORD}
    )
    assert "locked" in locked.content.decode()

    client.post(reverse("accounts:password_reset"), {"email": "amina@ntzs.test"})
    path = "/" + _reset_link(mail.outbox[0]).split("/", 3)[3]
    form_page = client.get(path, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"},
    )

    response = client.post(
        reverse("accounts:login"),
        {"username": "amina@ntzs.test", "password": "a-brand-new-passphrase"},
    )
    assert response.status_code == 302
    assert get_user(client).is_authenticated


def test_a_password_reset_to_the_same_password_still_unlocks_and_revokes_tokens(client):
    from rest_framework.authtoken.models import Token

    amina = customer(email="amina@ntzs.test")
    token = Token.objects.create(user=amina)
    for _ in range(throttle.LOGIN_LOCKOUT_FAILURES):
        client.post(reverse("accounts:login"), {"username": "amina@ntzs.test", "password": "wrong"})

    client.post(reverse("accounts:password_reset"), {"email": "amina@ntzs.test"})
    path = "/" + _reset_link(mail.outbox[0]).split("/", 3)[3]
    form_page = client.get(path, follow=True)
    client.post(
        form_page.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )

    response = client.post(
        reverse("accounts:login"), {"username": "amina@ntzs.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert not Token.objects.filter(pk=token.pk).exists()
