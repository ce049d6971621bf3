import pytest
from django.contrib.auth import get_user
from django.urls import reverse

from tests.factories import PASSWORD, customer

pytestmark = pytest.mark.django_db


def test_login_with_email_and_password_goes_home(client):
    customer(email="amina@ntzs.test")

    response = client.post(
        reverse("accounts:login"), {"username": "Amina@NTZS.test", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response.url == reverse("accounts:home")
    assert get_user(client).is_authenticated


def test_login_with_a_wrong_password_shows_an_error(client):
    customer()

    response = client.post(
        reverse("accounts:login"), {"username": "amina@ntzs.test", "password": "wrong"}
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert not get_user(client).is_authenticated


def test_home_needs_a_login(client):
    response = client.get(reverse("accounts:home"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_logout_by_post_ends_the_session(client):
    client.force_login(customer())

    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert not get_user(client).is_authenticated


def test_logout_by_get_is_refused(client):
    client.force_login(customer())

    response = client.get(reverse("accounts:logout"))

    assert response.status_code == 405
    assert get_user(client).is_authenticated
