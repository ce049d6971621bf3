import pytest
from django.contrib.auth import get_user
from django.urls import reverse

from accounts.models import User
from accounts.services import InvalidInput, user_sign_up
from core.exceptions import ConflictError
from tests.factories import PASSWORD, customer

pytestmark = pytest.mark.django_db


def _signup_data(**overrides):
    data = {
        "email": "zawadi@ntzs.test",
        "full_name": "Zawadi Mrema",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }
    data.update(overrides)
    return data


def test_sign_up_creates_a_user_with_a_lowercase_email():
    user = user_sign_up(email="  Zawadi@NTZS.test ", password=PASSWORD, full_name="Zawadi Mrema")

    assert user.email == "zawadi@ntzs.test"
    assert user.check_password(PASSWORD)
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


def test_signup_page_creates_the_account_and_logs_in(client):
    response = client.post(reverse("accounts:signup"), _signup_data())

    assert response.status_code == 302
    assert response.url == reverse("accounts:home")
    assert get_user(client).email == "zawadi@ntzs.test"


def test_signup_page_shows_mismatched_passwords_as_a_form_error(client):
    response = client.post(reverse("accounts:signup"), _signup_data(password_confirm="other-pw-1"))

    assert response.status_code == 200
    assert "The two passwords are not the same." in response.content.decode()
    assert not User.objects.exists()


def test_signup_page_shows_a_taken_email_as_a_form_error(client):
    customer(email="zawadi@ntzs.test")

    response = client.post(reverse("accounts:signup"), _signup_data())

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.count() == 1


def test_signup_page_shows_a_weak_password_on_the_password_field(client):
    response = client.post(
        reverse("accounts:signup"), _signup_data(password="password", password_confirm="password")
    )

    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert not User.objects.exists()
