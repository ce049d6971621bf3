"""Issue 11 on the account pages: the login page in Kiswahili (its label and its refusal in
the site's own words), the site's date format on the identity page, and one clock for people
on the wallet page (the signed message says UTC and EAT, and still verifies)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from eth_account.messages import encode_defunct

from accounts.models import WalletChallenge
from accounts.services import kyc_submit
from tests.factories import WalletFactory, customer, wallet_key

pytestmark = pytest.mark.django_db

# 05:48 UTC is 08:48 in Dar es Salaam (EAT, UTC+3).
DEC_2 = dt.datetime(2026, 12, 2, 5, 48, tzinfo=dt.UTC)


def _language(client, language: str):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def test_the_login_page_labels_the_email_field_in_kiswahili(client):
    body = _language(client, "sw").get(reverse("accounts:login")).content.decode()
    assert '<label for="id_username">Barua pepe:</label>' in body
    assert '<label for="id_password">Nenosiri:</label>' in body
    assert 'for="id_username">Email' not in body and 'for="id_username">email' not in body


def test_a_wrong_password_is_refused_in_the_sites_own_words(client):
    customer(email="amina@ntzs.test")
    login = reverse("accounts:login")
    wrong = {"username": "amina@ntzs.test", "password": "wrong"}

    english = _language(client, "en").post(login, wrong).content.decode()
    assert "This e-mail address and password do not match an account." in english
    assert "case-sensitive" not in english

    swahili = _language(client, "sw").post(login, wrong).content.decode()
    assert "Barua pepe hii na nenosiri havilingani na akaunti yoyote." in swahili
    assert "nywila" not in swahili and "email/" not in swahili


def test_the_identity_page_shows_the_submission_time_in_the_site_format(client):
    person = customer()
    with time_machine.travel(DEC_2, tick=False):
        kyc_submit(user=person, national_id="19900101111110000123", full_name="Amina Juma")
    client.force_login(person)

    swahili = _language(client, "sw").get(reverse("accounts:kyc_submit")).content.decode()
    assert "2 Des 2026, 08:48 EAT" in swahili
    assert "Dis." not in swahili and "a.m" not in swahili
    english = _language(client, "en").get(reverse("accounts:kyc_submit")).content.decode()
    assert "2 Dec 2026, 08:48 EAT" in english


def test_the_wallet_page_and_its_message_agree_on_the_clock(client):
    person = customer()
    wallet = WalletFactory(user=person, key_name="amina-issue11")
    client.force_login(person)
    url = reverse("accounts:wallet_verify", kwargs={"wallet_id": wallet.pk})

    with time_machine.travel(DEC_2, tick=False):
        body = _language(client, "en").get(url).content.decode()
    challenge = WalletChallenge.objects.get(wallet=wallet)
    assert "Expires: 2026-12-02 05:58:00 UTC (2026-12-02 08:58 EAT)" in challenge.message
    assert "This message can be used once, until 2 Dec 2026, 08:58 EAT." in body
    assert "08:58 EAT" in body.split('id="wallet-message-text">')[1].split("</pre>")[0]

    # The message as now written is what the wallet signs and what the server verifies.
    signed = wallet_key("amina-issue11").sign_message(encode_defunct(text=challenge.message))
    with time_machine.travel(DEC_2 + dt.timedelta(minutes=1), tick=False):
        response = client.post(
            url,
            {"challenge": str(challenge.pk), "signature": "0x" + bytes(signed.signature).hex()},
        )
    assert response.status_code == 302
    wallet.refresh_from_db()
    assert wallet.verified_at is not None
