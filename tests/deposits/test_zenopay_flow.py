"""ZenoPay end to end through the sandbox, in-process: initiation, the phone, the webhook
hint, order-status checks, polling, expiry and every way a payment can go wrong."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse

from core.exceptions import ConflictError, PermissionRefused
from core.models import Alert
from core.services import dual_control_approve
from deposits.models import DepositRequest, DepositTransition, OrphanPayment, PaymentNotification
from deposits.services.operator import deposit_confirm_manual_request
from deposits.services.payments import (
    deposit_check,
    deposits_expire_stale,
    payment_initiate,
    payments_poll,
)
from deposits.services.transitions import deposit_reject
from deposits.tasks import check_deposit

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def requested(make_deposit, zenopay_sandbox, clock):
    """A deposit whose USSD push was sent (initiation requested)."""

    def _requested(**kwargs) -> DepositRequest:
        deposit = make_deposit(**kwargs)
        assert payment_initiate(deposit_id=deposit.pk) == "requested"
        deposit.refresh_from_db()
        return deposit

    return _requested


def _statuses(deposit):
    return list(
        DepositTransition.objects.filter(deposit=deposit)
        .order_by("at", "id")
        .values_list("from_status", "to_status")
    )


def _later(clock, seconds=31):
    clock.shift(dt.timedelta(seconds=seconds))


@pytest.mark.django_db
def test_happy_path_phone_approves_webhook_hint_check_mint_pending(
    requested, zenopay_sandbox, clock
):
    deposit = requested(amount=5_000)
    assert zenopay_sandbox.order(deposit.pk).amount_tzs == 5_000
    zenopay_sandbox.approve(deposit.pk)  # the sandbox fires its webhook at our endpoint
    assert deposit_check(deposit_id=deposit.pk, source="webhook") == "applied"
    deposit.refresh_from_db()
    order = zenopay_sandbox.order(deposit.pk)
    assert deposit.status == "mint_pending"
    assert deposit.psp_reference == order.transid and deposit.psp_channel == order.channel
    assert deposit.fiat_confirmed_at == START
    assert _statuses(deposit) == [("", "submitted"), ("submitted", "mint_pending")]
    hint = PaymentNotification.objects.get(kind="webhook")
    check = PaymentNotification.objects.get(kind="order_status")
    assert (hint.outcome, check.outcome) == ("applied", "applied")
    assert hint.key_status == "absent"  # the sandbox, like ZenoPay, sends no x-api-key


@pytest.mark.django_db
def test_the_webhook_enqueues_the_check_so_the_happy_path_does_not_wait_for_polling(
    requested, zenopay_sandbox, broker, django_capture_on_commit_callbacks
):
    deposit = requested(amount=5_000)
    with django_capture_on_commit_callbacks(execute=True):
        zenopay_sandbox.approve(deposit.pk)
    assert ("deposits.tasks.check_deposit", [str(deposit.pk), "webhook"]) in broker()


@pytest.mark.django_db
def test_a_customers_check_again_is_recorded_with_source_user_and_the_customer(
    requested, zenopay_sandbox, amina, broker, django_capture_on_commit_callbacks, caplog
):
    deposit = requested()
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)  # no hint: the customer asks
    customer = Client()
    customer.force_login(amina)
    with django_capture_on_commit_callbacks(execute=True):
        customer.post(reverse("deposits:check_again", kwargs={"deposit_id": deposit.pk}))
    [(name, args)] = broker()
    assert (name, args) == (
        "deposits.tasks.check_deposit",
        [str(deposit.pk), "user", str(amina.pk), True],
    )
    with caplog.at_level(logging.INFO):
        assert check_deposit(*args) == "applied"  # what the worker runs with that message
    confirmed = DepositTransition.objects.get(deposit=deposit, to_status="mint_pending")
    assert (confirmed.source, confirmed.actor) == ("user", amina)
    assert "checked ZenoPay (user), found completed payment deposit=" in caplog.text


@pytest.mark.django_db
def test_only_the_webhooks_hint_is_recorded_as_webhook(
    requested, zenopay_sandbox, broker, django_capture_on_commit_callbacks
):
    deposit = requested()
    with django_capture_on_commit_callbacks(execute=True):
        zenopay_sandbox.approve(deposit.pk)
    [args] = [args for name, args in broker() if name == "deposits.tasks.check_deposit"]
    assert check_deposit(*args) == "applied"
    confirmed = DepositTransition.objects.get(deposit=deposit, to_status="mint_pending")
    assert (confirmed.source, confirmed.actor) == ("webhook", None)


@pytest.mark.django_db
def test_a_large_deposit_goes_to_the_safe_lane(requested, zenopay_sandbox):
    deposit = requested(amount=9_000)
    zenopay_sandbox.approve(deposit.pk)
    deposit_check(deposit_id=deposit.pk, source="webhook")
    deposit.refresh_from_db()
    assert deposit.status == "mint_requires_safe"


@pytest.mark.django_db
def test_a_dropped_webhook_is_found_by_polling(requested, zenopay_sandbox, clock, caplog):
    deposit = requested()
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)
    assert PaymentNotification.objects.filter(kind="webhook").count() == 0
    assert payments_poll() == {}  # not due yet (first poll after 30 s)
    _later(clock)
    with caplog.at_level(logging.INFO):
        assert payments_poll() == {"applied": 1}
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"
    assert "polled ZenoPay, found completed payment" in caplog.text


@pytest.mark.django_db
def test_an_empty_order_status_for_a_while_then_the_payment(requested, zenopay_sandbox, clock):
    deposit = requested()
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)
    zenopay_sandbox.knobs(empty_data_polls=2, server_error_polls=0)
    outcomes = []
    for _ in range(3):
        clock.shift(dt.timedelta(minutes=10))
        outcomes.append(deposit_check(deposit_id=deposit.pk, source="poll"))
    assert outcomes == ["ignored", "ignored", "applied"]
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"


@pytest.mark.django_db
@pytest.mark.parametrize("knob", [{"not_found_polls": 1}, {"server_error_polls": 1}])
def test_not_found_and_server_errors_never_cancel(requested, zenopay_sandbox, clock, knob):
    deposit = requested()
    zenopay_sandbox.knobs(**knob)
    _later(clock)
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "ignored"
    deposit.refresh_from_db()
    assert deposit.status == "submitted"
    assert deposit.next_poll_at > START


@pytest.mark.django_db
def test_a_create_that_records_the_order_then_times_out_is_found_by_polling(
    make_deposit, zenopay_sandbox, clock
):
    zenopay_sandbox.knobs(create_times_out=True)
    deposit = make_deposit()
    assert payment_initiate(deposit_id=deposit.pk) == "uncertain"
    deposit.refresh_from_db()
    assert (deposit.status, deposit.initiation) == ("submitted", "uncertain")
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)  # the customer paid anyway
    _later(clock)
    payments_poll()
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"


@pytest.mark.django_db
def test_a_redelivered_initiation_sends_no_second_push(make_deposit, zenopay_sandbox):
    deposit = make_deposit()
    assert payment_initiate(deposit_id=deposit.pk) == "requested"
    assert payment_initiate(deposit_id=deposit.pk) == "skipped"
    assert len(zenopay_sandbox.orders()) == 1


@pytest.mark.django_db
def test_a_refused_create_cancels_with_the_reason(make_deposit, zenopay_fake):
    zenopay_fake.reply(
        400, json={"status": "error", "resultcode": "001", "message": "Invalid phone number"}
    )
    deposit = make_deposit()
    assert payment_initiate(deposit_id=deposit.pk) == "refused"
    deposit.refresh_from_db()
    assert (deposit.status, deposit.initiation) == ("cancelled", "refused")
    assert "Invalid phone number" in deposit.status_reason


@pytest.mark.django_db
def test_a_forged_completed_webhook_never_advances_an_unpaid_deposit(requested, client):
    deposit = requested()
    response = client.post(
        "/api/webhooks/zenopay",
        content_type="application/json",
        data={
            "order_id": str(deposit.pk),
            "payment_status": "COMPLETED",
            "transid": "FORGED",
            "amount": "5000",
        },
    )
    assert response.status_code == 200
    assert deposit_check(deposit_id=deposit.pk, source="webhook") == "ignored"
    deposit.refresh_from_db()
    assert (deposit.status, deposit.psp_reference) == ("submitted", "")


@pytest.mark.django_db(transaction=True)
def test_fifty_identical_webhooks_at_once_make_one_check_and_one_transition(
    make_deposit, zenopay_sandbox
):
    deposit = make_deposit()
    payment_initiate(deposit_id=deposit.pk)
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)
    body = {"order_id": str(deposit.pk), "payment_status": "COMPLETED"}
    barrier = threading.Barrier(50)
    codes, outcomes = [], []

    def replay():
        barrier.wait()
        try:
            codes.append(
                Client()
                .post("/api/webhooks/zenopay", data=body, content_type="application/json")
                .status_code
            )
            outcomes.append(deposit_check(deposit_id=deposit.pk, source="webhook"))
        finally:
            connection.close()

    threads = [threading.Thread(target=replay) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 50
    assert outcomes.count("applied") == 1 and outcomes.count("debounced") == 49
    assert PaymentNotification.objects.filter(kind="order_status").count() == 1
    assert PaymentNotification.objects.filter(kind="webhook").count() == 50
    assert DepositTransition.objects.filter(deposit=deposit, to_status="mint_pending").count() == 1


@pytest.mark.django_db
def test_an_amount_mismatch_is_held_and_never_expires(requested, zenopay_sandbox, clock):
    deposit = requested(amount=5_000)
    zenopay_sandbox.approve(deposit.pk, amount=4_000)
    assert deposit_check(deposit_id=deposit.pk, source="webhook") == "held"
    deposit.refresh_from_db()
    assert deposit.status == "submitted"
    assert deposit.hold_reason.startswith("amount mismatch: paid 4000")
    assert deposit.hold_details["paid_amount_tzs"] == 4_000
    clock.shift(dt.timedelta(hours=80))
    assert deposits_expire_stale() == 0
    assert payments_poll() == {}
    deposit.refresh_from_db()
    assert deposit.status == "submitted" and deposit.hold_reason


@pytest.mark.django_db
def test_completed_without_a_reference_is_held_for_a_person_not_cancelled_at_expiry(
    make_deposit, zenopay_fake, clock
):
    deposit = make_deposit()
    zenopay_fake.reply(json=_completed(deposit, transid=None, reference=None))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "ignored"  # not yet

    clock.shift(dt.timedelta(hours=73))
    zenopay_fake.reply(json=_completed(deposit, transid=None, reference=None))
    assert deposits_expire_stale() == 0

    deposit.refresh_from_db()
    assert (deposit.status, deposit.hold_reason) == ("submitted", "unreadable reference")
    assert Alert.objects.filter(
        kind="unreadable payment", key=str(deposit.pk), deposit_id=deposit.pk
    ).exists()


@pytest.mark.django_db
def test_the_last_check_before_expiry_finds_a_late_payment(requested, zenopay_sandbox, clock):
    deposit = requested()
    clock.shift(dt.timedelta(hours=73))
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)
    assert deposits_expire_stale() == 0
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"


@pytest.mark.django_db
def test_unpaid_for_72_hours_is_cancelled_then_a_daily_check_reopens_it(
    requested, zenopay_sandbox, clock
):
    deposit = requested()
    clock.shift(dt.timedelta(hours=71))
    assert deposits_expire_stale() == 0
    clock.shift(dt.timedelta(hours=2))
    assert deposits_expire_stale() == 1
    deposit.refresh_from_db()
    assert deposit.status == "cancelled"
    assert deposit.status_reason == "No payment arrived within 72 hours."
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)  # paid late
    clock.shift(dt.timedelta(hours=23))
    assert payments_poll() == {}
    clock.shift(dt.timedelta(hours=2))
    assert payments_poll() == {"applied": 1}
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"
    assert ("cancelled", "mint_pending") in _statuses(deposit)


@pytest.mark.django_db
def test_a_declined_payment_cancels_with_a_specific_reason(requested, zenopay_sandbox):
    deposit = requested()
    zenopay_sandbox.decline(deposit.pk)
    assert deposit_check(deposit_id=deposit.pk, source="webhook") == "applied"
    deposit.refresh_from_db()
    assert deposit.status == "cancelled"
    assert "declined" in deposit.status_reason


@pytest.mark.django_db
def test_a_payment_on_a_rejected_deposit_is_held(requested, zenopay_sandbox, compliance):
    deposit = requested()
    deposit_reject(deposit_id=deposit.pk, reason="KYC concern", actor=compliance)
    zenopay_sandbox.approve(deposit.pk)
    assert deposit_check(deposit_id=deposit.pk, source="webhook") == "held"
    deposit.refresh_from_db()
    assert (deposit.status, deposit.hold_reason) == (
        "rejected",
        "payment received on a rejected deposit",
    )


@pytest.mark.django_db
def test_a_second_payment_with_another_reference_becomes_an_orphan(
    make_deposit, zenopay_fake, clock
):
    deposit = make_deposit()
    zenopay_fake.reply(
        200,
        json={
            "result": "SUCCESS",
            "data": [
                {
                    "order_id": str(deposit.pk),
                    "amount": "5000",
                    "payment_status": "COMPLETED",
                    "transid": "TXFIRST",
                    "channel": "MPESA-TZ",
                    "reference": "R1",
                    "msisdn": "255712345678",
                }
            ],
        },
    )
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "applied"
    _later(clock)
    zenopay_fake.reply(
        200,
        json={
            "result": "SUCCESS",
            "data": [
                {
                    "order_id": str(deposit.pk),
                    "amount": "5000",
                    "payment_status": "COMPLETED",
                    "transid": "TXSECOND",
                    "channel": "MPESA-TZ",
                    "reference": "R2",
                    "msisdn": "255712345678",
                }
            ],
        },
    )
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "orphan"
    orphan = OrphanPayment.objects.get()
    assert (orphan.psp_reference, orphan.reason, orphan.amount_tzs) == (
        "TXSECOND",
        "second payment",
        5_000,
    )
    _later(clock)
    zenopay_fake.reply(
        200,
        json={
            "result": "SUCCESS",
            "data": [
                {
                    "order_id": str(deposit.pk),
                    "amount": "5000",
                    "payment_status": "COMPLETED",
                    "transid": "TXFIRST",
                    "msisdn": "255712345678",
                }
            ],
        },
    )
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "duplicate"


@pytest.mark.django_db
def test_one_transid_for_two_deposits_holds_both_and_opens_an_alert(
    requested, zenopay_sandbox, baraka
):
    first = requested(amount=3_000)
    second = requested(user=baraka, amount=3_000, phone="0754111222")
    zenopay_sandbox.knobs(reuse_transid="TXSAME")
    zenopay_sandbox.approve(first.pk)
    assert deposit_check(deposit_id=first.pk, source="webhook") == "applied"
    zenopay_sandbox.knobs(reuse_transid="TXSAME")
    zenopay_sandbox.approve(second.pk)
    assert deposit_check(deposit_id=second.pk, source="webhook") == "held"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.hold_reason) == ("mint_pending", "conflicting PSP reference")
    assert (second.status, second.hold_reason) == ("submitted", "conflicting PSP reference")
    assert (
        Alert.objects.filter(
            kind="psp reference conflict",
            key="TXSAME",
            resolved_at__isnull=True,
            deposit_id=second.pk,  # the deposit the conflicting payment came for
        ).count()
        == 1
    )


@pytest.mark.django_db
@pytest.mark.forced_status
def test_a_conflict_with_a_deposit_already_minting_holds_only_the_new_one(
    requested, zenopay_sandbox, baraka
):
    first = requested(amount=3_000)
    zenopay_sandbox.knobs(reuse_transid="TXSAME2")
    zenopay_sandbox.approve(first.pk)
    deposit_check(deposit_id=first.pk, source="webhook")
    DepositRequest.objects.filter(pk=first.pk).update(status="minted")  # set-up shortcut
    second = requested(user=baraka, amount=3_000, phone="0754111222")
    zenopay_sandbox.knobs(reuse_transid="TXSAME2")
    zenopay_sandbox.approve(second.pk)
    assert deposit_check(deposit_id=second.pk, source="webhook") == "held"
    first.refresh_from_db()
    assert first.hold_reason == ""


@pytest.mark.django_db
def test_a_fresh_deposit_is_polled_before_a_backlog_of_stale_ones(
    make_deposit, zenopay_sandbox, clock, settings
):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 1_000
    settings.USER_DAILY_LIMIT_TZS = 10**9
    settings.USER_MONTHLY_LIMIT_TZS = 10**9
    stale = [make_deposit(amount=1_000 + i) for i in range(30)]
    for deposit in stale:
        payment_initiate(deposit_id=deposit.pk)
    clock.shift(dt.timedelta(hours=1))
    fresh = make_deposit(amount=2_500)
    payment_initiate(deposit_id=fresh.pk)
    zenopay_sandbox.approve(fresh.pk, drop_webhook=True)
    _later(clock)
    payments_poll(limit=10)
    fresh.refresh_from_db()
    assert fresh.status == "mint_pending"


@pytest.mark.django_db
def test_manual_confirmation_needs_a_second_person_and_requeries_zenopay(
    requested, zenopay_sandbox, compliance, compliance_two, clock
):
    deposit = requested()
    zenopay_sandbox.knobs(empty_data_polls=5)  # order-status is empty or unreliable
    request = deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid="TXDASH1",
        amount_tzs=5_000,
        phone="0712345678",
        evidence="seen on the ZenoPay dashboard",
        maker=compliance,
    )
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=compliance)
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert (deposit.status, deposit.psp_reference) == ("mint_pending", "TXDASH1")
    assert deposit.fiat_confirmed_by == compliance_two


@pytest.mark.django_db
def test_manual_confirmation_of_a_cancelled_deposit_is_allowed(
    requested, zenopay_sandbox, compliance, compliance_two
):
    deposit = requested()
    zenopay_sandbox.decline(deposit.pk)
    deposit_check(deposit_id=deposit.pk, source="webhook")
    zenopay_sandbox.knobs(not_found_polls=1)
    request = deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid="TXDASH2",
        amount_tzs=5_000,
        phone="",
        evidence="paid at an agent",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"


@pytest.mark.django_db
def test_manual_confirmation_refused_when_zenopay_shows_another_transid(
    requested, zenopay_sandbox, compliance, compliance_two
):
    deposit = requested()
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)
    request = deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid="TXWRONG",
        amount_tzs=5_000,
        phone="",
        evidence="typo?",
        maker=compliance,
    )
    with pytest.raises(ConflictError, match="not the one entered"):
        dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert deposit.status == "submitted"
    request.refresh_from_db()
    assert request.decision == "pending"


@pytest.mark.django_db
def test_a_refunded_mismatch_payment_is_never_treated_as_new_money(
    requested, zenopay_sandbox, compliance, compliance_two, clock
):
    from deposits.services.operator import deposit_hold_release_request

    deposit = requested(amount=5_000)
    zenopay_sandbox.approve(deposit.pk, amount=4_000)
    deposit_check(deposit_id=deposit.pk, source="webhook")
    request = deposit_hold_release_request(
        deposit_id=deposit.pk, resolution="refund", evidence="reversed on M-Pesa", maker=compliance
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    _later(clock, 11)
    zenopay_sandbox.fire_webhook(deposit.pk)  # ZenoPay retries its webhook
    assert deposit_check(deposit_id=deposit.pk, source="webhook") == "duplicate"
    assert OrphanPayment.objects.get().status == "dismissed"  # remembered, not payable


@pytest.mark.django_db
def test_after_cancel_and_orphan_a_recheck_of_the_old_deposit_holds_nothing(
    requested, zenopay_sandbox, compliance, compliance_two, clock
):
    from deposits.services.operator import deposit_hold_release_request

    deposit = requested(amount=5_000)
    zenopay_sandbox.approve(deposit.pk, amount=4_000)
    deposit_check(deposit_id=deposit.pk, source="webhook")
    request = deposit_hold_release_request(
        deposit_id=deposit.pk,
        resolution="cancel_and_orphan",
        evidence="paid 4,000",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    _later(clock, 11)
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "duplicate"
    replacement = OrphanPayment.objects.get().matched_deposit
    assert replacement.status == "mint_pending" and replacement.hold_reason == ""
    assert not Alert.objects.filter(kind="psp reference conflict").exists()


@pytest.mark.django_db
def test_manual_confirmation_is_refused_while_zenopay_cannot_be_asked(
    requested, zenopay_sandbox, compliance, compliance_two
):
    deposit = requested()
    request = deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid="TXDASH9",
        amount_tzs=5_000,
        phone="",
        evidence="dashboard",
        maker=compliance,
    )
    zenopay_sandbox.knobs(server_error_polls=1)
    with pytest.raises(ConflictError, match="could not be asked"):
        dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert deposit.status == "submitted"


@pytest.mark.django_db
def test_manual_confirmation_cannot_override_the_amount_zenopay_reported(
    requested, zenopay_sandbox, compliance, compliance_two
):
    deposit = requested(amount=5_000)
    zenopay_sandbox.approve(deposit.pk, amount=1_000)
    deposit_check(deposit_id=deposit.pk, source="webhook")  # held: paid 1,000
    zenopay_sandbox.knobs(empty_data_polls=1)
    request = deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid="TXDASH10",
        amount_tzs=5_000,
        phone="",
        evidence="says 5,000",
        maker=compliance,
    )
    with pytest.raises(ConflictError, match="earlier order-status answer"):
        dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert deposit.status == "submitted" and deposit.hold_reason


# --- Outside values that do not fit (DESIGN §14 invariant 13) ---------------------------------


def _completed(deposit, **entry):
    return {
        "result": "SUCCESS",
        "data": [
            {
                "order_id": str(deposit.pk),
                "amount": str(deposit.amount_tzs),
                "payment_status": "COMPLETED",
                "transid": "TX-OK",
                "channel": "MPESA-TZ",
                "reference": "R1",
                "msisdn": "255712345678",
                **entry,
            }
        ],
    }


@pytest.mark.django_db
def test_an_overlong_transid_holds_the_paid_deposit_as_unreadable_with_an_alert(
    make_deposit, zenopay_fake
):
    deposit = make_deposit()
    transid = "T" * 150
    zenopay_fake.reply(json=_completed(deposit, transid=transid))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "held"
    deposit.refresh_from_db()
    assert (deposit.status, deposit.hold_reason, deposit.psp_reference) == (
        "submitted",
        "unreadable reference",
        "",
    )
    assert "reference of 150 characters" in deposit.hold_details["unreadable"]
    answer = PaymentNotification.objects.get(kind="order_status")
    assert transid in answer.body and answer.outcome == "held"  # the raw answer is kept
    assert Alert.objects.filter(
        kind="unreadable payment", key=str(deposit.pk), resolved_at__isnull=True
    ).exists()


@pytest.mark.django_db
def test_two_transids_sharing_their_first_100_characters_stay_two_payments(
    make_deposit, baraka, zenopay_fake, clock
):
    first = make_deposit(amount=3_000)
    second = make_deposit(user=baraka, amount=3_000, phone="0754111222")
    shared = "X" * 100
    zenopay_fake.reply(json=_completed(first, transid=shared))
    zenopay_fake.reply(json=_completed(second, transid=shared + "2", msisdn="255754111222"))
    assert deposit_check(deposit_id=first.pk, source="poll") == "applied"
    assert deposit_check(deposit_id=second.pk, source="poll") == "held"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.psp_reference, first.hold_reason) == ("mint_pending", shared, "")
    assert second.hold_reason == "unreadable reference"  # never "conflicting PSP reference"
    assert not Alert.objects.filter(kind="psp reference conflict").exists()
    # A second payment on the first deposit sharing 99 characters is its own orphan.
    _later(clock)
    zenopay_fake.reply(json=_completed(first, transid="X" * 99 + "3"))
    assert deposit_check(deposit_id=first.pk, source="poll") == "orphan"
    assert OrphanPayment.objects.get().psp_reference == "X" * 99 + "3"


@pytest.mark.django_db
def test_an_overlong_channel_is_clipped_and_the_payment_confirmed(make_deposit, zenopay_fake):
    deposit = make_deposit()
    zenopay_fake.reply(json=_completed(deposit, channel="M-PESA\x00 " + "é" * 300))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "applied"
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending" and deposit.psp_reference == "TX-OK"
    assert deposit.psp_channel == ("M-PESA " + "é" * 300)[:40]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "entry",
    [
        {"msisdn": "2557" * 10},
        {"transid": "TX\x00NUL"},
        {"amount": "12.5"},
        {"transid": {"id": ["TX"]}},
    ],
    ids=["overlong-msisdn", "nul-transid", "fraction", "object-transid"],
)
def test_an_unreadable_completed_payment_holds_the_deposit(make_deposit, zenopay_fake, entry):
    deposit = make_deposit()
    zenopay_fake.reply(json=_completed(deposit, **entry))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "held"
    deposit.refresh_from_db()
    assert (deposit.status, deposit.hold_reason) == ("submitted", "unreadable reference")
    # Only a readable reference is kept on the hold, so a refund can remember the payment.
    readable_ref = "transid" not in entry
    assert (deposit.hold_details.get("psp_reference") == "TX-OK") is readable_ref


@pytest.mark.django_db
def test_an_overlong_payment_status_is_stored_and_the_deposit_polled_again(
    make_deposit, zenopay_fake
):
    deposit = make_deposit()
    zenopay_fake.reply(json=_completed(deposit, payment_status="COMPLETED" + "!" * 40))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "ignored"
    answer = PaymentNotification.objects.get(kind="order_status")
    assert (answer.payment_status, answer.outcome) == ("", "ignored")
    assert "COMPLETED!!!!" in answer.body
    deposit.refresh_from_db()
    assert deposit.status == "submitted" and deposit.next_poll_at > START


@pytest.mark.django_db
def test_a_second_payment_with_an_overlong_channel_is_still_an_orphan(
    make_deposit, zenopay_fake, clock
):
    deposit = make_deposit()
    zenopay_fake.reply(json=_completed(deposit))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "applied"
    _later(clock)
    zenopay_fake.reply(json=_completed(deposit, transid="TX-TWO", channel="C" * 500))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "orphan"
    orphan = OrphanPayment.objects.get()
    assert (orphan.psp_reference, orphan.channel) == ("TX-TWO", "C" * 40)


@pytest.mark.django_db
def test_an_unreadable_second_payment_on_an_advanced_deposit_opens_an_alert(
    make_deposit, zenopay_fake, clock
):
    deposit = make_deposit()
    zenopay_fake.reply(json=_completed(deposit))
    deposit_check(deposit_id=deposit.pk, source="poll")
    _later(clock)
    zenopay_fake.reply(json=_completed(deposit, transid="Y" * 101))
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "ignored"
    assert Alert.objects.filter(kind="unreadable payment", key=str(deposit.pk)).exists()
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending" and deposit.psp_reference == "TX-OK"
