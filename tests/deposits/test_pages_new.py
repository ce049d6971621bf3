"""The new-deposit page: what it shows, what it creates, and a clear error (with no deposit
written) for every kind of bad input, in English and Kiswahili."""

from __future__ import annotations

import re
import uuid

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from deposits.models import DepositRequest
from tests.factories import KycCaseFactory, WalletFactory, customer

pytestmark = pytest.mark.django_db

NEW = reverse("deposits:new")
ZENOPAY = DepositRequest.Provider.ZENOPAY
BANK = DepositRequest.Provider.BANK_TRANSFER


@pytest.fixture
def amina_client(client, amina):
    client.force_login(amina)
    return client


def _form(person, **overrides) -> dict:
    data = {
        "amount_tzs": "25,000",
        "payment_provider": ZENOPAY,
        "buyer_phone": "0712 345 678",
        "bank": "",
        "wallet": str(person.test_wallet.pk),
        "idempotency_key": str(uuid.uuid4()),
    }
    data.update(overrides)
    return data


def _in_kiswahili(client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    return client


def test_the_form_shows_limits_prefilled_phone_wallet_and_methods(amina_client, amina):
    response = amina_client.get(NEW)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Buy nTZS</h1>" in body
    assert "From TSh 1,000 to TSh 1,000,000 per deposit." in body
    assert 'value="0712 345 678"' in body  # the customer's own number, editable
    assert str(amina.test_wallet.pk) in body
    assert "Mobile money (M-Pesa, Mixx by Yas, Airtel Money, Halopesa)" in body
    assert "Bank transfer" in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'name="idempotency_key"' in body
    assert 'inputmode="numeric"' in body


def test_the_form_lists_active_banks_for_a_transfer(amina_client, nmb_bank):
    closed = type(nmb_bank).objects.create(name="Closed Bank", status="inactive")
    body = amina_client.get(NEW).content.decode()
    assert f'<option value="{nmb_bank.pk}">NMB</option>' in body
    assert str(closed.pk) not in body


def test_the_form_in_kiswahili(amina_client):
    body = _in_kiswahili(amina_client).get(NEW).content.decode()
    assert "<h1>Nunua nTZS</h1>" in body
    assert "Kuanzia TSh 1,000 hadi TSh 1,000,000 kwa kila amana." in body
    assert "Utalipaje?" in body
    assert "Buy nTZS" not in body


def test_a_customer_without_approved_identity_is_sent_home(client):
    person = customer(email="juma@ntzs.test")
    KycCaseFactory(user=person)
    WalletFactory(user=person, verified=True)
    client.force_login(person)
    response = client.get(NEW, follow=True)
    assert response.redirect_chain == [(reverse("accounts:home"), 302)]
    assert "Finish the steps below before you buy nTZS." in response.content.decode()


def test_a_customer_without_a_verified_wallet_is_sent_home(client):
    person = customer(email="juma@ntzs.test")
    KycCaseFactory(user=person, approved=True)
    WalletFactory(user=person)
    client.force_login(person)
    assert client.get(NEW)["Location"] == reverse("accounts:home")


def test_the_pages_need_a_login(client):
    response = client.get(NEW)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_a_zenopay_deposit_is_created_and_shows_check_your_phone(amina_client, amina):
    response = amina_client.post(NEW, _form(amina))
    deposit = DepositRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})
    assert (deposit.amount_tzs, deposit.buyer_phone, deposit.payment_provider) == (
        25_000,
        "+255712345678",
        ZENOPAY,
    )
    assert "Check your phone" in amina_client.get(response["Location"]).content.decode()


def test_a_bank_transfer_ignores_the_phone_and_gets_a_reference(amina_client, amina, nmb_bank):
    response = amina_client.post(
        NEW, _form(amina, payment_provider=BANK, bank=str(nmb_bank.pk), buyer_phone="not a phone")
    )
    deposit = DepositRequest.objects.get()
    assert response.status_code == 302
    assert (deposit.payment_provider, deposit.bank, deposit.buyer_phone) == (BANK, nmb_bank, "")
    assert deposit.transfer_reference in amina_client.get(response["Location"]).content.decode()


def test_a_double_submitted_form_makes_one_deposit(amina_client, amina):
    data = _form(amina)
    first = amina_client.post(NEW, data)
    second = amina_client.post(NEW, data)
    assert DepositRequest.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_a_form_resent_with_other_details_is_refused_with_a_fresh_key(amina_client, amina):
    data = _form(amina)
    amina_client.post(NEW, data)
    response = amina_client.post(NEW, {**data, "amount_tzs": "30000"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "This form was already sent for another deposit." in body
    assert f'value="{data["idempotency_key"]}"' not in body
    assert DepositRequest.objects.count() == 1


BAD_INPUT = [
    ({"amount_tzs": ""}, "This field is required."),
    ({"amount_tzs": "-5000"}, "Enter the amount in whole shillings, for example 5000."),
    ({"amount_tzs": "0"}, "The amount must be more than zero."),
    ({"amount_tzs": "abc"}, "Enter the amount in whole shillings, for example 5000."),
    ({"amount_tzs": "12.5"}, "Enter the amount in whole shillings, for example 5000."),
    ({"amount_tzs": "9" * 22}, "The largest single deposit is TSh 1,000,000."),
    ({"amount_tzs": "999"}, "The smallest deposit is TSh 1,000."),
    ({"amount_tzs": "1,000,001"}, "The largest single deposit is TSh 1,000,000."),
    ({"buyer_phone": ""}, "Enter the mobile number that will pay."),
    (
        {"buyer_phone": "+254 712 345 678"},
        "Only Tanzanian mobile numbers (+255) can pay with mobile money.",
    ),
    (
        {"buyer_phone": "022 212 3456"},
        "That is not a Tanzanian mobile number; mobile numbers start with 06 or 07.",
    ),
    (
        {"buyer_phone": "<script>alert(1)</script>"},
        "Enter a Tanzanian mobile number such as 0712 345 678.",
    ),
    ({"payment_provider": "cash"}, "Select a valid choice."),
    ({"payment_provider": BANK, "bank": ""}, "Choose the bank you will transfer from."),
    ({"wallet": str(uuid.uuid4())}, "Select a valid choice."),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUT)
def test_bad_input_is_a_clear_error_and_writes_no_deposit(amina_client, amina, overrides, message):
    response = amina_client.post(NEW, _form(amina, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert DepositRequest.objects.count() == 0


def test_another_customers_wallet_cannot_be_chosen(amina_client, amina, baraka):
    response = amina_client.post(NEW, _form(amina, wallet=str(baraka.test_wallet.pk)))
    assert "Select a valid choice." in response.content.decode()
    assert DepositRequest.objects.count() == 0


def test_errors_in_kiswahili(amina_client, amina):
    client = _in_kiswahili(amina_client)
    zero = client.post(NEW, _form(amina, amount_tzs="0")).content.decode()
    foreign = client.post(NEW, _form(amina, buyer_phone="+254712345678")).content.decode()
    empty = client.post(NEW, _form(amina, amount_tzs="")).content.decode()
    assert "Kiasi lazima kiwe zaidi ya sifuri." in zero
    assert "Namba za simu za Tanzania (+255) pekee" in foreign
    assert "Sehemu hii inahitajika" in empty
    assert DepositRequest.objects.count() == 0


def test_the_daily_limit_says_what_is_left(amina_client, amina, make_deposit, settings):
    settings.USER_DAILY_LIMIT_TZS = 10_000
    make_deposit(amount=8_000)
    response = amina_client.post(NEW, _form(amina, amount_tzs="5000"))
    assert (
        "This deposit would take you over your daily limit of TSh 10,000 (TSh 2,000 left today)."
    ) in response.content.decode()
    assert DepositRequest.objects.count() == 1


def test_the_30_day_limit_says_what_is_left(amina_client, amina, make_deposit, settings):
    settings.USER_MONTHLY_LIMIT_TZS = 10_000
    make_deposit(amount=8_000)
    response = amina_client.post(NEW, _form(amina, amount_tzs="5000"))
    assert (
        "This deposit would take you over your 30-day limit of TSh 10,000 (TSh 2,000 left)."
    ) in response.content.decode()
    assert DepositRequest.objects.count() == 1


def test_too_many_deposits_in_a_short_time(amina_client, amina, settings):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 1
    assert amina_client.post(NEW, _form(amina, amount_tzs="5000")).status_code == 302
    response = amina_client.post(NEW, _form(amina, amount_tzs="6000"))
    assert "Too many deposits started in a short time" in response.content.decode()
    assert DepositRequest.objects.count() == 1


def test_mobile_money_unavailable_without_a_settlement_bank(amina_client, amina, settlement_bank):
    settlement_bank.status = "inactive"
    settlement_bank.save()
    response = amina_client.post(NEW, _form(amina))
    assert "Mobile money deposits are not available right now" in response.content.decode()
    assert DepositRequest.objects.count() == 0


def test_a_post_without_csrf_is_refused_and_writes_nothing(amina):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(amina)
    response = strict.post(NEW, _form(amina))
    assert response.status_code == 403
    assert DepositRequest.objects.count() == 0


def test_script_in_the_amount_is_shown_escaped(amina_client, amina):
    body = amina_client.post(
        NEW, _form(amina, amount_tzs="<script>alert(1)</script>")
    ).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert DepositRequest.objects.count() == 0


def test_an_open_payment_is_pointed_at_before_paying_again(amina_client, make_deposit):
    open_payment = make_deposit(amount=7_000)
    body = amina_client.get(NEW).content.decode()
    assert "A payment of TSh 7,000 from +255 7•• ••• 678 is still open." in body
    assert reverse("deposits:detail", kwargs={"deposit_id": open_payment.pk}) in body


def test_a_form_posted_without_a_key_comes_back_with_one(amina_client, amina):
    body = amina_client.post(NEW, _form(amina, amount_tzs="0", idempotency_key="")).content.decode()
    key = re.search(r'name="idempotency_key" value="([^"]+)"', body).group(1)
    assert uuid.UUID(key)
