"""Issue 11, what a customer reads on the deposit pages: the bank's account details (and never
the internal settlement label), the heading that follows the live status, the transaction
without a link on a chain that has no explorer, the site's own date format in both
languages, a phone number refused for its length, the favicon, "check now" from the start,
and every stage a deposit passed through, with its time."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys

import pytest
import time_machine
from django.conf import settings
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation

from accounts.models import User
from backstage.demo import demo_users_ensure
from core.templatetags.site_time import site_time_format
from deposits.exceptions import InvalidDeposit
from deposits.models import Bank, DepositRequest
from deposits.phones import phone_normalize_tz
from deposits.selectors import tx_explorer_url
from deposits.services import transitions as t
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.payments import payment_initiate
from tests.config.test_settings import PRODUCTION

pytestmark = pytest.mark.django_db

BANK = DepositRequest.Provider.BANK_TRANSFER
TX_HASH = "0x" + "ab" * 32
# 05:48 UTC is 08:48 in Dar es Salaam (EAT, UTC+3).
DEC_2 = dt.datetime(2026, 12, 2, 5, 48, 7, tzinfo=dt.UTC)


@pytest.fixture
def amina_client(client, amina):
    client.force_login(amina)
    return client


def _get(client, url, language="en") -> str:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def _detail(deposit) -> str:
    return reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})


def _fragment(deposit) -> str:
    return reverse("deposits:status_fragment", kwargs={"deposit_id": deposit.pk})


def _receipt(deposit) -> str:
    return reverse("deposits:receipt", kwargs={"deposit_id": deposit.pk})


def _requested(deposit, zenopay_fake) -> None:
    zenopay_fake.reply(
        200,
        json={
            "status": "success",
            "resultcode": "000",
            "order_id": str(deposit.pk),
            "message": "Request in progress. You will receive a callback shortly",
        },
    )
    assert payment_initiate(deposit_id=deposit.pk) == "requested"


def _paid(deposit) -> None:
    t.deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=deposit.amount_tzs, psp_reference="TX1", source="poll"
    )


def _minted(deposit) -> None:
    _paid(deposit)
    t.deposits_claim(deposit_ids=[deposit.pk])
    t.deposit_mark_minted(deposit_id=deposit.pk, tx_hash=TX_HASH, source="worker")


# --- The bank-transfer page: account name and number, never the settlement label ---------------


def test_the_bank_transfer_page_shows_the_account_name_and_number(
    amina_client, make_deposit, nmb_bank
):
    Bank.objects.filter(pk=nmb_bank.pk).update(
        account_name="nTZS Limited", account_number="2040 1234 567", transfer_instructions=""
    )
    deposit = make_deposit(provider=BANK, bank=nmb_bank, amount=20_000, phone="")

    body = _get(amina_client, _detail(deposit))
    # (The classes are for the layout; helper B may add to them.)
    assert re.search(r'<dt>Account name</dt><dd class="account-name[^"]*">nTZS Limited</dd>', body)
    assert re.search(
        r'<dt>Account number</dt><dd class="account-number[^"]*">2040 1234 567</dd>', body
    )
    swahili = _get(amina_client, _detail(deposit), "sw")
    assert "<dt>Jina la akaunti</dt>" in swahili and "<dt>Namba ya akaunti</dt>" in swahili


def test_the_api_gives_a_bank_transfer_its_account_details(amina, make_deposit, nmb_bank, client):
    Bank.objects.filter(pk=nmb_bank.pk).update(
        account_name="nTZS Limited", account_number="2040 1234 567"
    )
    deposit = make_deposit(provider=BANK, bank=nmb_bank, phone="")
    client.force_login(amina)
    data = client.get(f"/api/v1/deposits/{deposit.pk}").json()
    assert (data["account_name"], data["account_number"]) == ("nTZS Limited", "2040 1234 567")


def test_demo_banks_have_account_details_and_no_internal_label(client):
    # A local database seeded before issue 11 still has the labelled settlement bank.
    Bank.objects.create(name="CRDB Bank (ZenoPay settlement)", is_zenopay_settlement=True)
    Bank.objects.create(
        name="NMB Bank", transfer_instructions="Account nTZS Ltd, 2040 1234 567, Dar es Salaam"
    )
    demo_users_ensure()
    demo_users_ensure()  # twice, as every `make dev` does: nothing duplicated

    banks = list(Bank.objects.order_by("name"))
    assert [(b.name, b.is_zenopay_settlement) for b in banks] == [
        ("CRDB Bank", True),
        ("NMB Bank", False),
    ]
    assert all(b.account_name and b.account_number for b in banks)
    assert [b.transfer_instructions for b in banks] == [
        "Branch: Azikiwe, Dar es Salaam",
        "Branch: Bank House, Dar es Salaam",
    ]

    person = User.objects.get(email="customer@ntzs.local")
    client.force_login(person)
    pages = [_get(client, reverse("deposits:new"))]
    for bank in banks:
        deposit, _created = deposit_create(
            user=person,
            data=DepositInput(
                amount_tzs=5_000,
                payment_provider=BANK,
                wallet_id=person.wallets.get().pk,
                bank_id=bank.pk,
            ),
        )
        page = _get(client, _detail(deposit))
        assert bank.account_number in page
        pages += [page, _get(client, _receipt(deposit))]
    for page in pages:
        assert "settlement" not in page.lower()


# --- The heading follows the live status -----------------------------------------------------


def test_the_live_status_carries_the_heading_the_page_would_have(
    amina_client, make_deposit, zenopay_fake
):
    deposit = make_deposit()
    _requested(deposit, zenopay_fake)
    assert 'data-heading="Check your phone"' in _get(amina_client, _fragment(deposit))
    assert 'data-heading="Angalia simu yako"' in _get(amina_client, _fragment(deposit), "sw")

    _minted(deposit)
    fragment = _get(amina_client, _fragment(deposit))
    assert 'data-heading="Your deposit"' in fragment
    assert "<h1 data-live-heading>Your deposit</h1>" in _get(amina_client, _detail(deposit))


def test_the_bank_page_reloads_when_its_heading_changes(amina_client, make_deposit, nmb_bank):
    deposit = make_deposit(provider=BANK, bank=nmb_bank, phone="")
    page = _get(amina_client, _detail(deposit))
    assert "<h1 data-live-heading>Make your bank transfer</h1>" in page
    assert "data-reload-on-new-heading" in page
    assert 'data-heading="Make your bank transfer"' in page


# The script's behaviour (heading, stages lit one by one) is proven in the browser:
# tests/browser/test_journey.py.


# --- The explorer link: none on a local chain ------------------------------------------------


def test_on_the_local_chain_the_hash_is_shown_without_a_link(amina_client, make_deposit):
    assert settings.CHAIN_ID == 31337 and settings.EXPLORER_URL == ""
    deposit = make_deposit()
    _minted(deposit)

    fragment = _get(amina_client, _fragment(deposit))
    receipt = _get(amina_client, _receipt(deposit))
    assert re.search(f'<span class="mono[^"]*">{TX_HASH}</span>', fragment)
    assert re.search(f'<dd class="mono[^"]*">{TX_HASH}</dd>', receipt)
    assert "basescan" not in fragment + receipt
    data = amina_client.get(f"/api/v1/deposits/{deposit.pk}").json()
    assert data["mint_tx_hash"] == TX_HASH and data["explorer_url"] == ""


def test_an_explorer_setting_links_the_transaction(settings):
    settings.EXPLORER_URL = "https://basescan.org"
    assert tx_explorer_url(TX_HASH) == f"https://basescan.org/tx/{TX_HASH}"
    assert tx_explorer_url("0x1234") == ""


def _explorer_setting(profile: str, env: dict, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(repr(s.EXPLORER_URL))",
        ],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "DJANGO_SETTINGS_MODULE": f"config.settings.{profile}",
            "NTZS_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("profile", "env", "expected"),
    [
        ("production", PRODUCTION, "'https://sepolia.basescan.org'"),
        ("production", {**PRODUCTION, "EXPLORER_URL": "none"}, "''"),
        ("production", {**PRODUCTION, "EXPLORER_URL": "https://x.example/"}, "'https://x.example'"),
        ("local", {}, "''"),
    ],
)
def test_the_explorer_follows_the_chain_unless_set(profile, env, expected, tmp_path):
    result = _explorer_setting(profile, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


# --- One date format, both languages ----------------------------------------------------------


def test_the_site_time_format_is_the_same_in_both_languages():
    with translation.override("en"):
        assert site_time_format(DEC_2) == "2 Dec 2026, 08:48 EAT"
        assert site_time_format(DEC_2, "seconds") == "2 Dec 2026, 08:48:07 EAT"
        assert site_time_format(DEC_2, "time") == "08:48:07 EAT"
    with translation.override("sw"):
        assert site_time_format(DEC_2) == "2 Des 2026, 08:48 EAT"
        assert site_time_format(DEC_2.replace(month=3)) == "2 Mac 2026, 08:48 EAT"


def test_history_and_receipt_use_the_site_time_format_in_kiswahili(amina_client, make_deposit):
    with time_machine.travel(DEC_2, tick=False):
        deposit = make_deposit()
        _minted(deposit)

    history = _get(amina_client, reverse("deposits:history"), "sw")
    assert "2 Des 2026, 08:48 EAT" in history
    receipt = _get(amina_client, _receipt(deposit), "sw")
    assert "2 Des 2026, 08:48:07 EAT" in receipt
    assert "Dis." not in history + receipt and "a.m" not in history + receipt
    assert "2 Dec 2026, 08:48 EAT" in _get(amina_client, reverse("deposits:history"))


# --- A phone number with too many digits -----------------------------------------------------


@pytest.mark.parametrize(
    "number", ["0712345678901234", "+255 712 345 678 901", "255712345678901", "071234567890"]
)
def test_a_number_with_too_many_digits_is_refused_as_too_long(number):
    with pytest.raises(InvalidDeposit, match="too long") as refusal:
        phone_normalize_tz(number)
    assert "06 or 07" not in str(refusal.value)


def test_a_number_with_digits_missing_is_refused_as_too_short():
    with pytest.raises(InvalidDeposit, match="too short"):
        phone_normalize_tz("071234567")


def test_the_deposit_form_says_a_sixteen_digit_number_is_too_long(amina_client, amina):
    amina_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = amina_client.post(
        reverse("deposits:new"),
        {
            "amount_tzs": "5000",
            "payment_provider": "zenopay",
            "buyer_phone": "0712345678901234",
            "wallet": str(amina.test_wallet.pk),
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "That number is too long" in body
    assert "start with 06 or 07" not in body
    assert not DepositRequest.objects.exists()
    amina_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    swahili = amina_client.post(
        reverse("deposits:new"),
        {
            "amount_tzs": "5000",
            "payment_provider": "zenopay",
            "buyer_phone": "0712345678901234",
            "wallet": str(amina.test_wallet.pk),
        },
    ).content.decode()
    assert "Namba hiyo ni ndefu mno" in swahili


# --- The favicon -------------------------------------------------------------------------------


def test_favicon_ico_is_answered_and_every_page_names_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == static("core/favicon.ico")
    icon = open(finders.find("core/favicon.ico"), "rb").read()
    assert icon[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert finders.find("core/favicon.svg")

    page = _get(client, reverse("accounts:login"))
    assert f'<link rel="icon" href="{static("core/favicon.ico")}"' in page
    assert f'<link rel="icon" href="{static("core/favicon.svg")}" type="image/svg+xml">' in page


# --- "Check now" as soon as the payment request is on the phone ------------------------------


def test_check_now_is_offered_as_soon_as_the_request_is_on_the_phone(
    amina_client, make_deposit, zenopay_fake
):
    deposit = make_deposit()
    check_url = reverse("deposits:check_again", kwargs={"deposit_id": deposit.pk})
    assert check_url not in _get(amina_client, _fragment(deposit))  # nothing sent yet

    _requested(deposit, zenopay_fake)
    body = _get(amina_client, _fragment(deposit))
    assert f'action="{check_url}"' in body
    assert "I have entered my PIN — check now" in body
    assert "taking longer than usual" not in body
    assert "Nimeweka PIN — angalia sasa" in _get(amina_client, _fragment(deposit), "sw")


# --- Every stage passed, with its time --------------------------------------------------------


def test_a_deposit_minted_between_two_polls_shows_every_stage_with_its_time(
    amina_client, make_deposit, zenopay_fake
):
    with time_machine.travel(DEC_2, tick=False):
        deposit = make_deposit()
        _requested(deposit, zenopay_fake)
    first = _get(amina_client, _fragment(deposit))
    assert 'data-step="1"' in first and 'data-final="0"' in first

    with time_machine.travel(DEC_2 + dt.timedelta(seconds=3), tick=False):
        _paid(deposit)
    with time_machine.travel(DEC_2 + dt.timedelta(seconds=4), tick=False):
        t.deposits_claim(deposit_ids=[deposit.pk])
    with time_machine.travel(DEC_2 + dt.timedelta(seconds=6), tick=False):
        t.deposit_mark_minted(deposit_id=deposit.pk, tx_hash=TX_HASH, source="worker")

    body = _get(amina_client, _fragment(deposit))
    assert '<div class="deposit-status" data-stage="minted" data-step="4"' in body
    for step, label, clock in [
        (1, "Payment requested", "08:48:07"),
        (2, "Payment received", "08:48:10"),
        (3, "Minting", "08:48:11"),
    ]:
        assert (
            f'<li data-step="{step}" class="done">{label} <time class="step-time" '
            f'datetime="2026-12-02T{clock}+03:00">{clock} EAT</time></li>'
        ) in body
    assert (
        '<li data-step="4" class="done current">Minted <time class="step-time" '
        'datetime="2026-12-02T08:48:13+03:00">08:48:13 EAT</time></li>'
    ) in body
    assert "stages.css" in _get(amina_client, _detail(deposit))


def test_a_stage_not_reached_shows_no_time(amina_client, make_deposit, zenopay_fake):
    deposit = make_deposit()
    _requested(deposit, zenopay_fake)
    _paid(deposit)
    body = _get(amina_client, _fragment(deposit))
    assert '<li data-step="2" class="current">Payment received <time' in body
    assert '<li data-step="3" class="">Minting</li>' in body
    assert '<li data-step="4" class="">Minted</li>' in body


def test_a_bank_customer_sees_the_stages_too(amina_client, make_deposit, nmb_bank):
    deposit = make_deposit(provider=BANK, bank=nmb_bank, phone="")
    body = _get(amina_client, _fragment(deposit))
    assert '<li data-step="1" class="current">Transfer awaited <time' in body
