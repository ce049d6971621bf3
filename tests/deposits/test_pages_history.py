"""History, receipts, ownership (another customer's deposit is a 404 on every page), the
links into the deposit pages, and the language switch."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from deposits.models import DepositRequest
from deposits.services import transitions as t
from tests.factories import customer

pytestmark = pytest.mark.django_db

HISTORY = reverse("deposits:history")
TX_HASH = "0x" + "cd" * 32
BANK = DepositRequest.Provider.BANK_TRANSFER


@pytest.fixture
def amina_client(client, amina):
    client.force_login(amina)
    return client


def _minted(make_deposit, **kwargs) -> DepositRequest:
    deposit = make_deposit(**kwargs)
    t.deposit_payment_confirm(
        deposit_id=deposit.pk,
        amount_tzs=deposit.amount_tzs,
        psp_reference=f"TX{deposit.amount_tzs}",
        source="poll",
    )
    t.deposits_claim(deposit_ids=[deposit.pk])
    t.deposit_mark_minted(deposit_id=deposit.pk, tx_hash=TX_HASH, source="worker")
    deposit.refresh_from_db()
    return deposit


def test_history_lists_the_customers_deposits_with_their_status(
    amina_client, make_deposit, nmb_bank
):
    _minted(make_deposit, amount=5_000)
    make_deposit(amount=125_000, provider=BANK, bank=nmb_bank, phone="")
    body = amina_client.get(HISTORY).content.decode()
    assert "TSh 5,000" in body and "Minted" in body
    assert "TSh 125,000" in body and "Waiting for your transfer" in body
    assert body.count(" EAT") == 2


def test_history_in_kiswahili_and_empty(client):
    person = customer(email="juma@ntzs.test")
    client.force_login(person)
    assert "You have not made any deposits yet." in client.get(HISTORY).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    body = client.get(HISTORY).content.decode()
    assert "<h1>Amana zako</h1>" in body
    assert "Bado hujaweka amana yoyote." in body


def test_history_shows_only_ones_own_deposits(amina_client, make_deposit, baraka):
    mine = make_deposit(amount=5_000)
    theirs = make_deposit(user=baraka, amount=7_000)
    body = amina_client.get(HISTORY).content.decode()
    assert str(mine.pk) in body
    assert str(theirs.pk) not in body and "TSh 7,000" not in body


def test_history_pages(amina_client, make_deposit, settings):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 100
    for i in range(21):
        make_deposit(amount=1_000 + i)
    first = amina_client.get(HISTORY).content.decode()
    second = amina_client.get(HISTORY, {"page": 2}).content.decode()
    assert "Page 1 of 2" in first and "TSh 1,020" in first and "TSh 1,000<" not in first
    assert "TSh 1,000<" in second
    assert amina_client.get(HISTORY, {"page": "x"}).status_code == 200


def test_receipt_has_what_a_receipt_needs_in_eat(amina_client, make_deposit, settings):
    settings.EXPLORER_URL = "https://sepolia.basescan.org"  # as on Base Sepolia (84532)
    with time_machine.travel(dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC), tick=False):
        deposit = _minted(make_deposit, amount=5_000)
    body = amina_client.get(
        reverse("deposits:receipt", kwargs={"deposit_id": deposit.pk})
    ).content.decode()
    assert "TSh 5,000" in body
    assert "TX5000" in body  # the ZenoPay transaction id
    assert str(deposit.pk) in body
    assert "2 Nov 2026, 11:00:00 EAT" in body
    assert "+255 7•• ••• 678" in body and "+255712345678" not in body
    assert f'href="https://sepolia.basescan.org/tx/{TX_HASH}"' in body
    assert "Minted" in body
    assert (
        "@media print" in open(settings.BASE_DIR / "deposits/static/deposits/deposits.css").read()
    )


def test_receipt_in_kiswahili(amina_client, make_deposit):
    deposit = _minted(make_deposit, amount=5_000)
    amina_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    body = amina_client.get(
        reverse("deposits:receipt", kwargs={"deposit_id": deposit.pk})
    ).content.decode()
    assert "Risiti ya amana ya nTZS" in body
    assert "Namba ya muamala wa ZenoPay" in body


def test_a_name_with_markup_is_shown_as_text(client, settlement_bank, make_deposit):
    from tests.factories import KycCaseFactory, WalletFactory

    person = customer(email="x@ntzs.test", full_name='<img src=x onerror="alert(1)">')
    KycCaseFactory(user=person, approved=True)
    person.test_wallet = WalletFactory(user=person, verified=True)
    deposit = make_deposit(user=person)
    client.force_login(person)
    for url in (
        reverse("deposits:receipt", kwargs={"deposit_id": deposit.pk}),
        reverse("accounts:home"),
    ):
        body = client.get(url).content.decode()
        assert '<img src=x onerror="alert(1)">' not in body
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body


@pytest.mark.parametrize(
    "name", ["deposits:detail", "deposits:status_fragment", "deposits:receipt"]
)
def test_another_customers_deposit_is_not_found(amina_client, make_deposit, baraka, name):
    theirs = make_deposit(user=baraka)
    response = amina_client.get(reverse(name, kwargs={"deposit_id": theirs.pk}))
    assert response.status_code == 404
    assert "+255" not in response.content.decode()


def test_another_customers_deposit_cannot_be_checked(
    amina_client, make_deposit, baraka, broker, django_capture_on_commit_callbacks
):
    theirs = make_deposit(user=baraka)
    with django_capture_on_commit_callbacks(execute=True):
        response = amina_client.post(
            reverse("deposits:check_again", kwargs={"deposit_id": theirs.pk})
        )
    assert response.status_code == 404
    assert broker() == []


def test_an_unknown_deposit_is_not_found(amina_client):
    response = amina_client.get(f"/deposits/{'0' * 8}-0000-0000-0000-{'0' * 12}/")
    assert response.status_code == 404
    assert amina_client.get("/deposits/12/").status_code == 404


def test_deposit_urls_carry_only_the_uuid(make_deposit):
    deposit = make_deposit()
    for name in (
        "deposits:detail",
        "deposits:status_fragment",
        "deposits:check_again",
        "deposits:receipt",
    ):
        url = reverse(name, kwargs={"deposit_id": deposit.pk})
        assert re.fullmatch(rf"/deposits/{deposit.pk}/(status/|check/|receipt/)?", url)


def test_home_links_a_ready_customer_to_buying_and_history(amina_client):
    body = amina_client.get(reverse("accounts:home")).content.decode()
    assert f'href="{reverse("deposits:new")}"' in body
    assert f'href="{HISTORY}"' in body


def test_the_nav_links_to_deposits_for_a_logged_in_customer(amina_client):
    assert f'href="{HISTORY}">Deposits<' in amina_client.get(HISTORY).content.decode()


def test_the_language_switch_turns_the_pages_into_kiswahili(amina_client, make_deposit):
    deposit = make_deposit()
    detail = reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})
    response = amina_client.post(
        reverse("set_language"), {"language": "sw", "next": detail}, follow=True
    )
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == detail
    assert "Tunatuma ombi la malipo" in body
    assert 'option value="sw" selected' in body


def test_home_in_kiswahili_links_to_buying(amina_client):
    amina_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    body = amina_client.get(reverse("accounts:home")).content.decode()
    assert "Nunua nTZS" in body and "Amana zako" in body
    assert f'href="{HISTORY}">Amana<' in body  # the nav link
