"""The "check your phone" / bank transfer page, its live status fragment in every deposit
state, and "I have already paid — check again". Deposits reach each state through the real
services (ZenoPay answers scripted with ``zenopay_fake``)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import time_machine
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from core.clock import now
from deposits.models import DepositRequest
from deposits.services import transitions as t
from deposits.services.payments import deposit_check, deposits_expire_stale, payment_initiate
from tests.factories import super_admin

pytestmark = pytest.mark.django_db

BANK = DepositRequest.Provider.BANK_TRANSFER
TX_HASH = "0x" + "ab" * 32
MASKED = "+255 7•• ••• 678"


def _order_status(deposit, payment_status, transid="TXPAID1"):
    return {
        "result": "SUCCESS",
        "data": [
            {
                "order_id": str(deposit.pk),
                "amount": str(deposit.amount_tzs),
                "payment_status": payment_status,
                "transid": transid,
                "channel": "MPESA-TZ",
                "reference": "R1",
                "msisdn": "255712345678",
            }
        ],
    }


def _create_accepted(deposit):
    return {
        "status": "success",
        "resultcode": "000",
        "order_id": str(deposit.pk),
        "message": "Request in progress. You will receive a callback shortly",
    }


def _requested(deposit, fake):
    fake.reply(200, json=_create_accepted(deposit))
    assert payment_initiate(deposit_id=deposit.pk) == "requested"


def _paid(deposit, fake):
    fake.reply(200, json=_order_status(deposit, "COMPLETED"))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "applied"


def _answered(deposit, fake, payment_status):
    _requested(deposit, fake)
    fake.reply(200, json=_order_status(deposit, payment_status, transid=""))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "applied"


def _claimed(deposit, fake):
    _paid(deposit, fake)
    assert t.deposits_claim(deposit_ids=[deposit.pk]) == [deposit.pk]


def _timed_out(deposit, fake):
    _requested(deposit, fake)
    fake.reply(200, json={"result": "FAIL", "resultcode": "404", "message": "Order not found"})
    with time_machine.travel(now() + dt.timedelta(hours=73), tick=False):
        assert deposits_expire_stale() == 1


def _refused(deposit, fake):
    fake.reply(
        400, json={"status": "error", "resultcode": "001", "message": "Invalid phone number"}
    )
    assert payment_initiate(deposit_id=deposit.pk) == "refused"


def _refunded(deposit, fake):
    _answered(deposit, fake, "CANCELLED")
    t.deposit_refund(
        deposit_id=deposit.pk,
        allowed=(DepositRequest.Status.CANCELLED,),
        actor=super_admin(),
        note="refunded by M-Pesa reversal",
    )


# state: (amount, set-up, expected English text, expected Kiswahili text, final)
STATES = {
    "sending": (
        5_000,
        lambda d, f: None,
        f"We are sending a payment request to {MASKED}",
        f"Tunatuma ombi la malipo kwa {MASKED}",
        False,
    ),
    "awaiting_payment": (
        5_000,
        _requested,
        f"A payment request for TSh 5,000 went to {MASKED}",
        f"Ombi la malipo la TSh 5,000 limetumwa kwa {MASKED}",
        False,
    ),
    "prompt_uncertain": (
        5_000,
        lambda d, f: (f.fail(requests.ReadTimeout), payment_initiate(deposit_id=d.pk)),
        "If you received it and paid, do not pay again",
        "Kama ulilipokea na ukalipa, usilipe tena",
        False,
    ),
    "payment_received": (
        5_000,
        _paid,
        "We have received your payment. Your nTZS will be minted",
        "Tumepokea malipo yako. nTZS zako zitatengenezwa",
        False,
    ),
    "safe": (
        20_000,
        _paid,
        "Large deposit: awaiting multisig approval",
        "Amana kubwa: inasubiri idhini ya multisig",
        False,
    ),
    "minting": (
        5_000,
        _claimed,
        "Your nTZS are being minted on Base",
        "nTZS zako zinatengenezwa kwenye Base",
        False,
    ),
    "minted": (
        5_000,
        lambda d, f: (
            _claimed(d, f),
            t.deposit_mark_minted(deposit_id=d.pk, tx_hash=TX_HASH, source="worker"),
        ),
        "Done: 5,000 nTZS were minted to your wallet.",
        "Imekamilika: nTZS 5,000 zimetengenezwa kwenye pochi yako.",
        True,
    ),
    "mint_delayed": (
        5_000,
        lambda d, f: (
            _claimed(d, f),
            t.deposit_mark_failed(deposit_id=d.pk, reason="nonce mined without our log"),
        ),
        "Minting is taking longer than usual; our team is on it.",
        "Utengenezaji unachukua muda mrefu kuliko kawaida",
        False,
    ),
    "held": (
        5_000,
        lambda d, f: t.deposit_hold_set(deposit_id=d.pk, reason="phone mismatch", source="poll"),
        "We are reviewing this payment. You do not need to do anything",
        "Tunakagua malipo haya. Huhitaji kufanya chochote",
        False,
    ),
    "declined": (
        5_000,
        lambda d, f: _answered(d, f, "FAILED"),
        "The payment was declined on your phone",
        "Malipo yamekataliwa kwenye simu yako",
        True,
    ),
    "cancelled": (
        5_000,
        lambda d, f: _answered(d, f, "CANCELLED"),
        "The payment was cancelled, so this deposit is closed.",
        "Malipo yameghairiwa, kwa hiyo amana hii imefungwa.",
        True,
    ),
    "timed_out": (
        5_000,
        _timed_out,
        "No payment arrived within 72 hours",
        "Hakuna malipo yaliyofika ndani ya saa 72",
        True,
    ),
    "refused": (
        5_000,
        _refused,
        "Your mobile money provider refused the payment request",
        "Mtoa huduma wako wa pesa kwa simu amekataa ombi la malipo",
        True,
    ),
    "refunded": (
        5_000,
        _refunded,
        "This deposit was refunded to you.",
        "Pesa za amana hii zimerejeshwa kwako.",
        True,
    ),
}


@pytest.fixture
def deposit_in(make_deposit, zenopay_fake):
    def _deposit_in(state: str) -> DepositRequest:
        amount, set_up, *_ = STATES[state]
        deposit = make_deposit(amount=amount)
        set_up(deposit, zenopay_fake)
        deposit.refresh_from_db()
        return deposit

    return _deposit_in


@pytest.fixture
def customer_client(client, amina):
    client.force_login(amina)
    return client


def _fragment(client, deposit, language="en"):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client.get(reverse("deposits:status_fragment", kwargs={"deposit_id": deposit.pk}))


@pytest.mark.parametrize("state", STATES)
def test_status_fragment_says_what_is_happening_in_each_state(customer_client, deposit_in, state):
    deposit = deposit_in(state)
    _amount, _set_up, english, kiswahili, final = STATES[state]

    response = _fragment(customer_client, deposit)
    body = response.content.decode()
    assert response.status_code == 200
    assert english in body
    assert f'data-final="{int(final)}"' in body
    assert "<html" not in body  # a fragment, not a page
    assert response["Cache-Control"].startswith("max-age=0")

    swahili = _fragment(customer_client, deposit, "sw").content.decode()
    assert kiswahili in swahili
    assert english not in swahili


@pytest.mark.parametrize(
    "state",
    [
        "sending",
        "awaiting_payment",
        "prompt_uncertain",
        "held",
        "payment_received",
        "safe",
        "minting",
        "mint_delayed",
    ],
)
def test_no_invitation_to_pay_again_while_a_payment_is_unresolved(
    customer_client, deposit_in, state
):
    deposit = deposit_in(state)
    for response in (
        _fragment(customer_client, deposit),
        customer_client.get(reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})),
    ):
        body = response.content.decode()
        assert reverse("deposits:new") not in body
        assert "Try again" not in body


@pytest.mark.parametrize("state", ["declined", "cancelled", "timed_out", "refused"])
def test_a_failed_payment_offers_try_again_and_says_why(customer_client, deposit_in, state):
    deposit = deposit_in(state)
    body = _fragment(customer_client, deposit).content.decode()
    assert "Try again" in body
    assert reverse("deposits:new") in body
    labels = {
        "declined": "Declined on the phone",
        "cancelled": "Cancelled",
        "timed_out": "Timed out",
        "refused": "Payment request refused",
    }
    assert labels[state] in body


def test_minted_links_the_transaction_to_the_base_sepolia_explorer(
    customer_client, deposit_in, settings
):
    settings.EXPLORER_URL = "https://sepolia.basescan.org"  # as on Base Sepolia (84532)
    deposit = deposit_in("minted")
    body = _fragment(customer_client, deposit).content.decode()
    assert f'href="https://sepolia.basescan.org/tx/{TX_HASH}"' in body
    assert reverse("deposits:receipt", kwargs={"deposit_id": deposit.pk}) in body


def test_steps_show_where_the_deposit_is(customer_client, deposit_in):
    deposit = deposit_in("minting")
    body = _fragment(customer_client, deposit).content.decode()
    assert '<li data-step="1" class="done">Payment requested <time' in body
    assert '<li data-step="2" class="done">Payment received <time' in body
    assert '<li data-step="3" class="current">Minting <time' in body
    assert '<li data-step="4" class="">Minted</li>' in body


def test_a_slow_payment_gets_honest_copy_and_keeps_its_check_now_button(
    customer_client, deposit_in
):
    deposit = deposit_in("awaiting_payment")
    check_url = reverse("deposits:check_again", kwargs={"deposit_id": deposit.pk})

    body = _fragment(customer_client, deposit).content.decode()
    assert f'action="{check_url}"' in body  # from the start (issue 11)
    assert "taking longer than usual" not in body

    with time_machine.travel(now() + dt.timedelta(minutes=2), tick=False):
        body = _fragment(customer_client, deposit).content.decode()
        sw_body = _fragment(customer_client, deposit, "sw").content.decode()
    assert "This is taking longer than usual." in body
    assert "do not pay again" in body
    assert f'action="{check_url}"' in body
    assert "I have entered my PIN — check now" in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert "Nimeweka PIN — angalia sasa" in sw_body


def test_an_uncertain_prompt_offers_check_again_at_once(customer_client, deposit_in):
    deposit = deposit_in("prompt_uncertain")
    body = _fragment(customer_client, deposit).content.decode()
    assert reverse("deposits:check_again", kwargs={"deposit_id": deposit.pk}) in body


def test_zenopay_detail_is_the_check_your_phone_page_in_both_languages(customer_client, deposit_in):
    deposit = deposit_in("awaiting_payment")
    url = reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})

    body = customer_client.get(url).content.decode()
    assert "<h1 data-live-heading>Check your phone</h1>" in body
    assert "TSh 5,000" in body
    assert MASKED in body
    assert "+255712345678" not in body and "0712345678" not in body
    fragment_url = reverse("deposits:status_fragment", kwargs={"deposit_id": deposit.pk})
    assert f'data-poll-url="{fragment_url}"' in body
    assert "deposits/deposits.js" in body
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in body

    customer_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    swahili = customer_client.get(url).content.decode()
    assert "<h1 data-live-heading>Angalia simu yako</h1>" in swahili
    assert 'lang="sw"' in swahili


def test_a_final_deposit_page_stops_refreshing(customer_client, deposit_in):
    deposit = deposit_in("minted")
    body = customer_client.get(
        reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})
    ).content.decode()
    assert "<h1 data-live-heading>Your deposit</h1>" in body
    assert 'http-equiv="refresh"' not in body
    assert 'data-poll-seconds="0"' in body


def test_the_poller_pauses_in_background_tabs_and_loads_nothing_external():
    path = finders.find("deposits/deposits.js")
    assert path
    script = open(path, encoding="utf-8").read()
    assert "document.hidden" in script and "visibilitychange" in script
    assert "http://" not in script and "https://" not in script


def test_bank_transfer_page_shows_the_bank_details_and_the_reference(
    customer_client, amina, make_deposit, nmb_bank
):
    deposit = make_deposit(provider=BANK, bank=nmb_bank, amount=250_000, phone="")
    url = reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})

    body = customer_client.get(url).content.decode()
    assert "<h1 data-live-heading>Make your bank transfer</h1>" in body
    assert "NMB" in body and "Account 2040 1234 567" in body
    assert "TSh 250,000" in body
    assert deposit.transfer_reference in body
    assert "Waiting for your transfer" in body
    assert 'data-poll-seconds="15"' in body

    customer_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    swahili = customer_client.get(url).content.decode()
    assert "Fanya uhamisho wako wa benki" in swahili
    assert "Kumbukumbu ya kuandika kwenye uhamisho" in swahili


def test_a_rejected_bank_transfer_says_why(customer_client, make_deposit, nmb_bank, compliance):
    deposit = make_deposit(provider=BANK, bank=nmb_bank, phone="")
    t.deposit_reject(
        deposit_id=deposit.pk, reason="No transfer with this reference arrived.", actor=compliance
    )
    body = _fragment(customer_client, deposit).content.decode()
    assert "This deposit was not approved." in body
    assert "No transfer with this reference arrived." in body
    assert "Try again" in body


def test_bank_instructions_are_escaped(customer_client, make_deposit, nmb_bank):
    nmb_bank.transfer_instructions = '<script>alert("x")</script>\nAccount 1'
    nmb_bank.save()
    deposit = make_deposit(provider=BANK, bank=nmb_bank, phone="")
    body = customer_client.get(
        reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})
    ).content.decode()
    assert '<script>alert("x")</script>' not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br>Account 1" in body


# --- "I have already paid — check again" ---------------------------------------------------------


def _check_again(client, deposit, **headers):
    return client.post(
        reverse("deposits:check_again", kwargs={"deposit_id": deposit.pk}), headers=headers
    )


def test_check_again_asks_zenopay_now_through_the_task(
    customer_client, deposit_in, broker, django_capture_on_commit_callbacks
):
    deposit = deposit_in("awaiting_payment")
    with django_capture_on_commit_callbacks(execute=True):
        response = _check_again(customer_client, deposit)
    assert response.status_code == 302
    assert response["Location"] == reverse("deposits:detail", kwargs={"deposit_id": deposit.pk})
    assert broker() == [
        ("deposits.tasks.check_deposit", [str(deposit.pk), "user", str(deposit.user_id), True])
    ]
    deposit.refresh_from_db()
    assert deposit.next_poll_at <= now()
    page = customer_client.get(response["Location"]).content.decode()
    assert "We are checking with your mobile money provider." in page


def test_check_again_twice_within_the_debounce_enqueues_one_check(
    customer_client, deposit_in, broker, django_capture_on_commit_callbacks
):
    deposit = deposit_in("awaiting_payment")
    with django_capture_on_commit_callbacks(execute=True):
        _check_again(customer_client, deposit)
        _check_again(customer_client, deposit)
    assert broker() == [
        ("deposits.tasks.check_deposit", [str(deposit.pk), "user", str(deposit.user_id), True])
    ]


def test_check_again_from_the_script_answers_with_the_fragment(customer_client, deposit_in):
    deposit = deposit_in("awaiting_payment")
    response = _check_again(customer_client, deposit, **{"X-Requested-With": "fetch"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert "We are checking with your mobile money provider." in body


def test_check_again_on_a_minted_deposit_checks_nothing(
    customer_client, deposit_in, broker, django_capture_on_commit_callbacks
):
    deposit = deposit_in("minted")
    with django_capture_on_commit_callbacks(execute=True):
        response = _check_again(customer_client, deposit)
    assert response.status_code == 302
    assert broker() == []
    page = customer_client.get(response["Location"]).content.decode()
    assert "There is no payment to check on this deposit." in page


def test_check_again_needs_post_and_csrf(amina, deposit_in):
    deposit = deposit_in("awaiting_payment")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(amina)
    url = reverse("deposits:check_again", kwargs={"deposit_id": deposit.pk})
    assert strict.get(url).status_code == 405
    assert strict.post(url).status_code == 403


def test_check_again_message_in_kiswahili(customer_client, deposit_in):
    deposit = deposit_in("awaiting_payment")
    customer_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    response = _check_again(customer_client, deposit)
    page = customer_client.get(response["Location"]).content.decode()
    assert "Tunaangalia na mtoa huduma wako wa pesa kwa simu." in page


def test_a_payment_held_on_a_cancelled_deposit_is_under_review_not_try_again(
    customer_client, deposit_in
):
    deposit = deposit_in("declined")
    t.deposit_hold_set(deposit_id=deposit.pk, reason="amount mismatch", source="poll")
    body = _fragment(customer_client, deposit).content.decode()
    assert "We are reviewing this payment." in body
    assert "Try again" not in body and reverse("deposits:new") not in body
    assert 'data-final="0"' in body
