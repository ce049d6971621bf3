"""A create that never left (the worker killed between committing ``requested`` and the
sending stamp, the last write before the HTTP call) is re-sent, on evidence: no answer
recorded, ZenoPay's order-status still "not found" after ZENOPAY_CREATE_RESEND_AFTER_S,
nothing else heard of the order. A create killed after its stamp (during the call) may have
reached ZenoPay and is never re-sent.

A kill is played by a ``BaseException`` raised where SIGKILL would stop the worker: on the
database connection just before the stamp's UPDATE runs, or in the HTTP transport during the
call. Nothing in the code under test catches it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading

import pytest
import requests
import time_machine
from django.conf import settings
from django.db import connection
from requests.adapters import BaseAdapter

from core.clock import now
from deposits.models import DepositRequest, PaymentNotification
from deposits.services import payments as payments_module
from deposits.services.payments import (
    payment_initiate,
    payment_initiate_resend,
    payments_initiate_due,
    payments_poll,
)
from deposits.services.transitions import deposit_hold_set
from deposits.zenopay import zenopay_session
from tests.support.zenopay_sandbox import mounted

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
RESEND_LINE = (
    "ZenoPay create re-sent deposit={}: the first never left and ZenoPay does not know the order"
)
NOT_FOUND = {
    "result": "FAIL",
    "resultcode": "404",
    "message": "Order not found",
    "reference": None,
    "data": [],
}
ACCEPTED = {
    "status": "success",
    "resultcode": "000",
    "message": "Request in progress. You will receive a callback shortly",
}


class WorkerKilled(BaseException):
    """What SIGKILL does to the worker mid-call: nothing after it runs, nothing catches it."""


class KillingAdapter(BaseAdapter):
    """In front of the sandbox: counts the creates that reached it, and kills the next
    ``kills`` creates before they leave (ZenoPay never hears of them)."""

    def __init__(self, inner: BaseAdapter, *, kills: int = 0):
        super().__init__()
        self.inner = inner
        self.kills = kills
        self.creates_sent = 0

    def send(self, request, **kwargs):
        if request.method == "POST" and request.url.endswith(settings.ZENOPAY_CREATE_PATH):
            if self.kills:
                self.kills -= 1
                raise WorkerKilled("SIGKILL")
            self.creates_sent += 1
        return self.inner.send(request, **kwargs)

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _resend_after(settings):
    settings.ZENOPAY_CREATE_RESEND_AFTER_S = 300
    settings.ZENOPAY_TIMEOUT = 60  # the floor (twice it) stays below the setting


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def sandbox_killing(zenopay_sandbox):
    adapter = KillingAdapter(zenopay_sandbox.adapter)
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, adapter):
        yield adapter


def _at(clock, seconds: float) -> None:
    clock.move_to(START + dt.timedelta(seconds=seconds))


def _kill_at_the_stamp(execute, sql, params, many, context):
    if sql.startswith("UPDATE") and '"initiation_sending_at" =' in sql:
        raise WorkerKilled("SIGKILL")
    return execute(sql, params, many, context)


def _killed_before_sending(send) -> None:
    """``send()`` claims a create and is killed before the stamp: the create never leaves."""
    with connection.execute_wrapper(_kill_at_the_stamp), pytest.raises(WorkerKilled):
        send()


def _killed_mid_create(deposit) -> DepositRequest:
    _killed_before_sending(lambda: payment_initiate(deposit_id=deposit.pk))
    deposit.refresh_from_db()
    assert (deposit.status, deposit.initiation) == ("submitted", "requested")
    assert deposit.initiation_requested_at == now() and deposit.initiation_answered_at is None
    assert deposit.initiation_sending_at is None
    return deposit


def _creates(fake) -> int:
    return sum(1 for call in fake.calls if call.method == "POST")


def _pending(order_id) -> dict:
    return {
        "result": "SUCCESS",
        "resultcode": "000",
        "data": [
            {
                "order_id": str(order_id),
                "amount": "5000",
                "payment_status": "PENDING",
                "transid": None,
                "channel": None,
                "reference": "0936183435",
                "msisdn": None,
            }
        ],
    }


@pytest.mark.django_db
def test_a_create_that_never_left_is_resent_once_then_paid_polled_and_confirmed(
    make_deposit, zenopay_sandbox, sandbox_killing, clock, caplog
):
    deposit = _killed_mid_create(make_deposit(amount=5_000))
    assert len(zenopay_sandbox.orders()) == 0
    _at(clock, 31)
    assert payments_poll() == {"ignored": 1}  # "Order not found": unknown, never cancelled
    assert PaymentNotification.objects.get(kind="order_status").no_data is True
    _at(clock, 301)
    assert payments_poll() == {"ignored": 1}  # still not found, now past the delay
    with caplog.at_level(logging.WARNING, logger="deposits.zenopay"):
        assert payments_initiate_due() == 1
    assert RESEND_LINE.format(deposit.pk) in caplog.text
    deposit.refresh_from_db()
    assert deposit.initiation == "requested"
    assert deposit.initiation_resent_at == START + dt.timedelta(seconds=301)
    assert deposit.initiation_answered_at is not None
    assert deposit.next_poll_at == deposit.initiation_resent_at + dt.timedelta(seconds=30)
    assert sandbox_killing.creates_sent == 1 and len(zenopay_sandbox.orders()) == 1
    # Never a third create: the re-send happened, and ZenoPay now knows the order anyway.
    _at(clock, 700)
    assert payments_initiate_due() == 0
    assert payment_initiate_resend(deposit_id=deposit.pk) == "skipped"
    assert sandbox_killing.creates_sent == 1
    # The customer approves the prompt; the webhook is lost; the poller finds the payment.
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)
    _at(clock, 701)
    assert payments_poll() == {"applied": 1}
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"
    assert deposit.psp_reference == zenopay_sandbox.order(deposit.pk).transid


@pytest.mark.django_db
def test_not_resent_before_a_not_found_answer_comes_after_the_delay(
    make_deposit, zenopay_sandbox, sandbox_killing, clock
):
    deposit = _killed_mid_create(make_deposit())
    _at(clock, 31)
    payments_poll()  # "not found", but only 31 s after the request
    _at(clock, 299)
    assert payments_initiate_due() == 0
    _at(clock, 900)  # long past the delay, yet no answer since it says "still not found"
    assert payments_initiate_due() == 0
    assert sandbox_killing.creates_sent == 0
    assert payments_poll() == {"ignored": 1}
    assert payments_initiate_due() == 1
    assert sandbox_killing.creates_sent == 1
    deposit.refresh_from_db()
    assert deposit.initiation_resent_at == START + dt.timedelta(seconds=900)


@pytest.mark.django_db
def test_not_resent_when_zenopay_answered_the_create(make_deposit, zenopay_sandbox, clock):
    deposit = make_deposit()
    assert payment_initiate(deposit_id=deposit.pk) == "requested"
    deposit.refresh_from_db()
    assert deposit.initiation_answered_at == START
    zenopay_sandbox.knobs(not_found_polls=5)  # ZenoPay's order-status lags behind its create
    for seconds in (31, 400):
        _at(clock, seconds)
        payments_poll()
    assert PaymentNotification.objects.filter(no_data=True).count() == 2
    assert payments_initiate_due() == 0
    assert len(zenopay_sandbox.orders()) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "heard",
    ["pending", "data-without-status", "webhook"],
)
def test_not_resent_when_zenopay_showed_it_knows_the_order(
    make_deposit, zenopay_fake, clock, client, heard
):
    deposit = _killed_mid_create(make_deposit())
    _at(clock, 31)
    if heard == "webhook":
        zenopay_fake.reply(json=NOT_FOUND)
        client.post(
            "/api/webhooks/zenopay",
            data=json.dumps({"order_id": str(deposit.pk), "payment_status": "PENDING"}),
            content_type="application/json",
        )
    elif heard == "pending":
        zenopay_fake.reply(json=_pending(deposit.pk))
    else:  # data ZenoPay holds for the order, even unreadable, is not "not found"
        zenopay_fake.reply(json={"result": "SUCCESS", "data": [{"order_id": str(deposit.pk)}]})
    payments_poll()
    _at(clock, 400)
    zenopay_fake.reply(json=NOT_FOUND)
    payments_poll()
    assert PaymentNotification.objects.filter(no_data=True, received_at__gte=START).exists()
    assert payments_initiate_due() == 0
    assert payment_initiate_resend(deposit_id=deposit.pk) == "skipped"
    assert _creates(zenopay_fake) == 0
    deposit.refresh_from_db()
    assert deposit.initiation_resent_at is None


@pytest.mark.django_db
def test_server_errors_and_timeouts_say_nothing_and_do_not_stop_the_resend(
    make_deposit, zenopay_fake, clock
):
    deposit = _killed_mid_create(make_deposit())
    _at(clock, 31)
    zenopay_fake.reply(502, body="<html>Bad gateway</html>")
    payments_poll()
    _at(clock, 91)
    zenopay_fake.fail(requests.ReadTimeout)
    payments_poll()
    _at(clock, 400)
    zenopay_fake.reply(json=NOT_FOUND)
    payments_poll()
    zenopay_fake.reply(json={**ACCEPTED, "order_id": str(deposit.pk)})
    assert payments_initiate_due() == 1
    assert _creates(zenopay_fake) == 1


@pytest.mark.django_db
def test_a_held_deposit_is_not_resent(make_deposit, zenopay_fake, clock):
    deposit = _killed_mid_create(make_deposit())
    for seconds in (31, 400):
        _at(clock, seconds)
        zenopay_fake.reply(json=NOT_FOUND)
        payments_poll()
    deposit_hold_set(deposit_id=deposit.pk, reason="looked at by compliance", source="admin")
    assert payments_initiate_due() == 0
    assert _creates(zenopay_fake) == 0


@pytest.mark.django_db
def test_an_uncertain_create_is_never_resent(make_deposit, zenopay_fake, clock):
    # The create left and timed out: ZenoPay may have prompted the customer.
    zenopay_fake.fail(requests.ReadTimeout)
    deposit = make_deposit()
    assert payment_initiate(deposit_id=deposit.pk) == "uncertain"
    for seconds in (31, 400):
        _at(clock, seconds)
        zenopay_fake.reply(json=NOT_FOUND)
        payments_poll()
    assert payments_initiate_due() == 0
    assert _creates(zenopay_fake) == 1
    deposit.refresh_from_db()
    assert (deposit.initiation, deposit.initiation_resent_at) == ("uncertain", None)


def _stranded_with_evidence(make_deposit, zenopay_fake, clock) -> DepositRequest:
    deposit = _killed_mid_create(make_deposit())
    for seconds in (31, 400):
        _at(clock, seconds)
        zenopay_fake.reply(json=NOT_FOUND)
        payments_poll()
    return deposit


@pytest.mark.django_db
def test_a_refused_resend_cancels_and_the_deposit_is_still_checked(
    make_deposit, zenopay_fake, clock
):
    deposit = _stranded_with_evidence(make_deposit, zenopay_fake, clock)
    zenopay_fake.reply(
        400, json={"status": "error", "resultcode": "400", "message": "Invalid phone number"}
    )
    assert payment_initiate_resend(deposit_id=deposit.pk) == "refused"
    deposit.refresh_from_db()
    assert (deposit.status, deposit.initiation) == ("cancelled", "refused")
    assert "Invalid phone number" in deposit.status_reason
    assert deposit.initiation_answered_at == START + dt.timedelta(seconds=400)
    # Should ZenoPay have had the order after all, a late payment still reopens it.
    assert deposit.next_poll_at == START + dt.timedelta(days=1, seconds=400)


@pytest.mark.django_db
def test_a_resend_that_times_out_becomes_uncertain_and_is_not_sent_again(
    make_deposit, zenopay_fake, clock, caplog
):
    deposit = _stranded_with_evidence(make_deposit, zenopay_fake, clock)
    zenopay_fake.fail(requests.ReadTimeout)
    with caplog.at_level(logging.WARNING, logger="deposits.zenopay"):
        assert payment_initiate_resend(deposit_id=deposit.pk) == "uncertain"
    assert f"ZenoPay create outcome unknown deposit={deposit.pk}" in caplog.text
    deposit.refresh_from_db()
    assert (deposit.status, deposit.initiation) == ("submitted", "uncertain")
    assert deposit.next_poll_at == START + dt.timedelta(seconds=430)
    _at(clock, 900)
    zenopay_fake.reply(json=NOT_FOUND)
    payments_poll()
    assert payments_initiate_due() == 0
    assert _creates(zenopay_fake) == 1


@pytest.mark.django_db
def test_one_failing_resend_is_logged_and_the_others_go_on(
    make_deposit, baraka, zenopay_fake, clock, caplog
):
    first = _killed_mid_create(make_deposit(amount=3_000))
    _at(clock, 1)
    second = _killed_mid_create(make_deposit(user=baraka, amount=4_000, phone="0754111222"))
    for seconds in (31, 400):
        _at(clock, seconds)
        zenopay_fake.reply(json=NOT_FOUND, times=2)
        payments_poll()
    # The oldest request first: its create breaks in a way nobody foresaw.
    zenopay_fake.fail(RuntimeError)
    zenopay_fake.reply(json=ACCEPTED)
    with caplog.at_level(logging.ERROR, logger="deposits.zenopay"):
        assert payments_initiate_due() == 1
    assert "ZenoPay create re-send failed deposit=" in caplog.text
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.initiation_answered_at is None and second.initiation_answered_at is not None
    assert first.initiation_resent_at and second.initiation_resent_at
    # The failing one had left (stamped) when it broke: it may have reached ZenoPay.
    assert first.initiation_sending_at is not None


@pytest.mark.django_db(transaction=True)
def test_two_resend_runs_at_once_send_one_create(make_deposit, zenopay_fake, clock):
    deposit = _stranded_with_evidence(make_deposit, zenopay_fake, clock)
    zenopay_fake.reply(json=ACCEPTED)  # one accepted create; a second would find nothing
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def run():
        try:
            start.wait()
            outcomes.append(payment_initiate_resend(deposit_id=deposit.pk))
        finally:
            connection.close()

    runners = [threading.Thread(target=run) for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=30)
    assert sorted(outcomes) == ["requested", "skipped"]
    assert _creates(zenopay_fake) == 1  # the killed one never left; one re-send
    deposit.refresh_from_db()
    assert deposit.initiation_answered_at is not None


@pytest.mark.django_db
def test_a_create_killed_during_the_call_is_never_resent(
    make_deposit, zenopay_sandbox, sandbox_killing, clock
):
    """Stamped as sending, no answer: it may have reached ZenoPay (whose order-status may lag
    behind its create), so the customer may have a prompt; only polling and expiry follow."""
    sandbox_killing.kills = 1
    deposit = make_deposit()
    with pytest.raises(WorkerKilled):
        payment_initiate(deposit_id=deposit.pk)
    deposit.refresh_from_db()
    assert deposit.initiation_sending_at == START and deposit.initiation_answered_at is None
    for seconds in (31, 400, 4_000):
        _at(clock, seconds)
        assert payments_poll() == {"ignored": 1}  # "Order not found"
        assert payments_initiate_due() == 0
    assert payment_initiate_resend(deposit_id=deposit.pk) == "skipped"
    assert sandbox_killing.creates_sent == 0
    deposit.refresh_from_db()
    assert (deposit.status, deposit.initiation, deposit.initiation_resent_at) == (
        "submitted",
        "requested",
        None,
    )


@pytest.mark.django_db
def test_a_resend_killed_before_it_left_is_resent_again_after_the_wait(
    make_deposit, zenopay_fake, clock
):
    deposit = _stranded_with_evidence(make_deposit, zenopay_fake, clock)
    _killed_before_sending(lambda: payment_initiate_resend(deposit_id=deposit.pk))
    deposit.refresh_from_db()
    assert deposit.initiation_resent_at == START + dt.timedelta(seconds=400)
    assert deposit.initiation_sending_at is None
    _at(clock, 500)
    zenopay_fake.reply(json=NOT_FOUND)
    payments_poll()
    assert payments_initiate_due() == 0  # not yet: the wait runs from the last re-send
    _at(clock, 800)
    zenopay_fake.reply(json=NOT_FOUND)
    payments_poll()
    zenopay_fake.reply(json={**ACCEPTED, "order_id": str(deposit.pk)})
    assert payments_initiate_due() == 1
    assert _creates(zenopay_fake) == 1
    deposit.refresh_from_db()
    assert deposit.initiation_answered_at == START + dt.timedelta(seconds=800)


@pytest.mark.django_db
def test_a_first_send_that_wakes_after_its_resend_sends_nothing(make_deposit, zenopay_fake, clock):
    """A worker frozen between its claim and its stamp (a paused VM) for longer than the
    wait: the re-send goes out; the frozen send, woken, finds the stamp taken."""
    deposit = _stranded_with_evidence(make_deposit, zenopay_fake, clock)
    zenopay_fake.reply(json={**ACCEPTED, "order_id": str(deposit.pk)})
    assert payment_initiate_resend(deposit_id=deposit.pk) == "requested"
    assert payments_module._create_send(deposit.pk, resent_at=None).outcome == "skipped"
    assert _creates(zenopay_fake) == 1
