"""Sign-up never reveals whether an address is registered; a confirmation link (24 hours)
creates the account with the password chosen on the linked page, and logs in."""

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth import get_user
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import throttle
from accounts.models import User
from accounts.services import InvalidInput, user_sign_up
from core.exceptions import ConflictError
from tests.factories import PASSWORD, customer

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-7"


def _sign_up(client, email="zawadi@ntzs.test", full_name="Zawadi Mrema", **extra):
    return client.post(
        reverse("accounts:signup"), {"email": email, "full_name": full_name}, **extra
    )


def _confirmation_path(message) -> str:
    return re.search(r"http://testserver(/signup/confirm/\S+/)", message.body).group(1)


def _without_csrf(content: bytes) -> bytes:
    """The page, less its per-session CSRF token (the language form carries one)."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def test_sign_up_creates_a_user_with_a_lowercase_email():
    user = user_sign_up(email="  Zawadi@NTZS.test ", password=PASSWORD, full_name="Zawadi Mrema")

    assert user.email == "zawadi@ntzs.test"
    assert user.check_password(PASSWORD)
    assert user.is_active
    assert not user.is_staff


def test_sign_up_with_an_email_already_used_in_another_case_is_refused():
    customer(email="amina@ntzs.test")

    with pytest.raises(ConflictError, match="already exists"):
        user_sign_up(email="AMINA@ntzs.test", password=PASSWORD)


def test_sign_up_with_a_weak_password_is_refused():
    with pytest.raises(InvalidInput) as exc:
        user_sign_up(email="zawadi@ntzs.test", password="12345678")

    assert exc.value.field == "password"
    assert not User.objects.exists()


def test_sign_up_answers_identically_for_a_new_and_a_registered_address():
    customer(email="amina@ntzs.test")
    answers = []
    for email in ("zawadi@ntzs.test", "Amina@NTZS.test"):
        client = Client()
        response = _sign_up(client, email=email)
        page = client.get(response.url)
        answers.append(
            (
                response.status_code,
                response.url,
                page.status_code,
                [t.name for t in page.templates],
                _without_csrf(page.content),
            )
        )

    assert answers[0] == answers[1]
    assert answers[0][0] == 302
    assert b"Check your e-mail" in answers[0][4]
    # No account is created before the confirmation; each address got one e-mail.
    assert list(User.objects.values_list("email", flat=True)) == ["amina@ntzs.test"]
    new, registered = mail.outbox
    assert new.to == ["zawadi@ntzs.test"] and "/signup/confirm/" in new.body
    assert registered.to == ["amina@ntzs.test"] and "/signup/confirm/" not in registered.body
    assert "tried to sign up" in registered.body
    assert "/password-reset/" in registered.body


def test_confirmation_link_creates_the_account_and_logs_in(client):
    _sign_up(client)
    path = _confirmation_path(mail.outbox[0])

    page = client.get(path)
    assert page.status_code == 200
    assert "zawadi@ntzs.test" in page.content.decode()
    response = client.post(path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("accounts:home")
    zawadi = User.objects.get(email="zawadi@ntzs.test")
    assert zawadi.is_active
    assert zawadi.full_name == "Zawadi Mrema"
    assert zawadi.check_password(NEW_PASSWORD)
    assert get_user(client) == zawadi


def test_confirmation_refuses_a_weak_or_mismatched_password(client):
    _sign_up(client)
    path = _confirmation_path(mail.outbox[0])

    weak = client.post(path, {"password": "12345678", "password_confirm": "12345678"})
    mismatched = client.post(path, {"password": NEW_PASSWORD, "password_confirm": "other-1"})

    assert weak.status_code == 200 and weak.context["form"].errors["password"]
    assert mismatched.context["form"].errors["password_confirm"]
    assert not User.objects.exists()


def test_expired_confirmation_link_is_refused_clearly(client):
    _sign_up(client)
    path = _confirmation_path(mail.outbox[0])

    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=24, minutes=1)):
        response = client.post(path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})

    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert not User.objects.exists()


def test_tampered_confirmation_link_is_refused_clearly(client):
    _sign_up(client)
    path = _confirmation_path(mail.outbox[0])
    token = path.split("/")[-2]
    tampered = path.replace(token, token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"))

    response = client.post(tampered, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})

    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert not User.objects.exists()


def test_a_second_use_of_the_link_is_harmless(client):
    _sign_up(client)
    path = _confirmation_path(mail.outbox[0])
    client.post(path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})

    other = Client()
    response = other.post(
        path, {"password": "someone-elses-pass-99", "password_confirm": "someone-elses-pass-99"}
    )

    assert response.status_code == 200
    assert "already confirmed" in response.content.decode()
    assert not get_user(other).is_authenticated
    assert User.objects.get(email="zawadi@ntzs.test").check_password(NEW_PASSWORD)
    assert User.objects.count() == 1


def test_sign_up_requests_are_throttled_per_client_and_send_nothing_when_refused(client):
    for n in range(throttle.SIGNUP_MAX_PER_CLIENT):
        assert _sign_up(client, email=f"person{n}@ntzs.test").status_code == 302

    response = _sign_up(client, email="one-more@ntzs.test")

    assert response.status_code == 200
    assert "Too many requests" in response.content.decode()
    assert len(mail.outbox) == throttle.SIGNUP_MAX_PER_CLIENT
    assert (
        _sign_up(Client(), email="one-more@ntzs.test", REMOTE_ADDR="203.0.113.5").status_code == 302
    )


def test_sign_up_requests_naming_one_address_are_limited_whoever_sends_them():
    for n in range(throttle.SIGNUP_MAX_PER_EMAIL):
        _sign_up(Client(), REMOTE_ADDR=f"203.0.113.{n}")

    response = _sign_up(Client(), REMOTE_ADDR="203.0.113.99")

    assert "Too many requests" in response.content.decode()
    assert len(mail.outbox) == throttle.SIGNUP_MAX_PER_EMAIL


def test_signup_page_shows_an_invalid_email_as_a_form_error(client):
    response = _sign_up(client, email="not-an-email")

    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert mail.outbox == []


def test_logged_in_people_are_sent_home_from_sign_up(client):
    client.force_login(customer())

    assert client.get(reverse("accounts:signup")).url == reverse("accounts:home")
