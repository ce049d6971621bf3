"""API tokens expire after API_TOKEN_TTL_DAYS and are revoked when the password changes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from core.clock import now
from deposits.apis import api_exception_handler
from tests.factories import PASSWORD, customer

pytestmark = pytest.mark.django_db

DEPOSITS = "/api/v1/deposits"


class WhoAmI(APIView):
    """A view on the project's default authentication classes and the API's error shape."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"email": request.user.email})

    def get_exception_handler(self):
        return api_exception_handler


def _call(token: Token):
    request = APIRequestFactory().get("/whoami", HTTP_AUTHORIZATION=f"Token {token.key}")
    return WhoAmI.as_view()(request)


def _age(token: Token, days: float) -> None:
    Token.objects.filter(pk=token.pk).update(created=now() - dt.timedelta(days=days))


def test_a_token_younger_than_the_ttl_works(settings):
    token = Token.objects.create(user=customer())
    _age(token, settings.API_TOKEN_TTL_DAYS - 1)

    response = _call(token)

    assert response.status_code == 200
    assert response.data == {"email": "amina@ntzs.test"}


def test_a_token_older_than_the_ttl_is_refused_with_a_json_401(settings):
    assert settings.API_TOKEN_TTL_DAYS == 90
    token = Token.objects.create(user=customer())
    _age(token, 91)

    response = _call(token)

    assert response.status_code == 401
    assert response.data["error"] == "token_expired"
    assert "expired" in response.data["detail"]
    assert not Token.objects.filter(pk=token.pk).exists()


def test_the_ttl_follows_the_setting(settings):
    settings.API_TOKEN_TTL_DAYS = 7
    token = Token.objects.create(user=customer())
    _age(token, 8)

    assert _call(token).status_code == 401


def test_a_password_change_revokes_the_users_tokens():
    amina = customer()
    token = Token.objects.create(user=amina)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get(DEPOSITS).status_code == 200

    amina.set_password("a-brand-new-passphrase")
    amina.save()

    response = api.get(DEPOSITS)
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert not Token.objects.filter(user=amina).exists()


def test_a_password_reset_revokes_the_users_tokens(client):
    amina = customer()
    Token.objects.create(user=amina)

    client.post(reverse("accounts:password_reset"), {"email": amina.email})
    link = mail.outbox[0].body.split("http://testserver", 1)[1].split()[0]
    form_page = client.get(link, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"},
    )

    assert not Token.objects.filter(user=amina).exists()


def test_logging_in_or_saving_the_user_keeps_the_tokens(client):
    amina = customer()
    token = Token.objects.create(user=amina)

    client.post(reverse("accounts:login"), {"username": amina.email, "password": PASSWORD})
    amina.full_name = "Amina J."
    amina.save()
    amina.set_password(PASSWORD)  # the same password again (a re-hash) is no change
    amina.save()

    assert Token.objects.filter(pk=token.pk).exists()


def test_an_expired_token_is_refused_by_the_deposits_api():
    token = Token.objects.create(user=customer())
    _age(token, 91)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = api.get(DEPOSITS)

    assert response.status_code == 401
    assert response.json()["error"] == "token_expired"
