"""ZenoPay drift (issue 10 item 9): answers that cannot be read open an alert within minutes
and resolve on the next readable one; deposits stay "outcome unknown", never cancelled early;
`data` as one object is read; a webhook whose check still answers PENDING re-checks soon."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import time_machine
from django.conf import settings

from core.models import Alert
from deposits.models import DepositRequest
from deposits.services.payments import (
    DRIFT_ALERT,
    deposit_check,
    deposits_expire_stale,
    payment_initiate,
    payments_poll,
)
from deposits.zenopay import zenopay_order_status, zenopay_session
from tests.support.zenopay_sandbox import ScriptedAdapter, mounted

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
CHANGED_SHAPE = {"status": "success", "orders": [{"id": "x", "state": "PAID"}]}


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def requested(make_deposit, zenopay_sandbox, clock):
    def _requested(**kwargs) -> DepositRequest:
        deposit = make_deposit(**kwargs)
        assert payment_initiate(deposit_id=deposit.pk) == "requested"
        return deposit

    return _requested


def _open(call: str) -> Alert | None:
    return Alert.objects.filter(kind=DRIFT_ALERT, key=call, resolved_at__isnull=True).first()


def _status_answer(order_id=None, payment_status="PENDING") -> dict:
    answer = {
        "result": "SUCCESS",
        "resultcode": "000",
        "message": "Order fetch successful",
        "data": {
            "order_id": str(order_id),
            "amount": "5000",
            "payment_status": payment_status,
            "transid": None,
            "channel": None,
            "reference": "0936183435",
            "msisdn": None,
        },
    }
    if order_id is None:
        del answer["data"]["order_id"]
    return answer


@pytest.mark.django_db
def test_a_changed_answer_shape_alerts_within_minutes_and_never_cancels_before_72_hours(
    requested, clock
):
    deposits = [requested(amount=5_000 + n) for n in range(3)]
    fake = ScriptedAdapter().reply(json=CHANGED_SHAPE, times=500)
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, fake):
        while _open("order-status") is None:
            clock.shift(dt.timedelta(seconds=31))
            assert dt.datetime.now(tz=dt.UTC) - START < dt.timedelta(minutes=10)
            payments_poll()
        alert = _open("order-status")
        assert "could not be read" in alert.detail and "ZENOPAY_BASE_URL" in alert.detail
        # Days of unreadable answers: polled, never cancelled before the 72 hours.
        for _ in range(20):
            clock.shift(dt.timedelta(hours=3, minutes=30))
            payments_poll()
            deposits_expire_stale()
        assert dt.datetime.now(tz=dt.UTC) - START < dt.timedelta(hours=72)
        statuses = DepositRequest.objects.filter(pk__in=[d.pk for d in deposits])
        assert set(statuses.values_list("status", flat=True)) == {"submitted"}
        assert len(fake.calls) > 3 * 5

    # A readable answer ends the streak and resolves the alert.
    readable = ScriptedAdapter().reply(json=_status_answer(deposits[0].pk))
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, readable):
        clock.shift(dt.timedelta(minutes=1))
        assert deposit_check(deposit_id=deposits[0].pk, source="poll") == "ignored"
    assert _open("order-status") is None
    assert Alert.objects.filter(kind=DRIFT_ALERT, key="order-status").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "drift"),
    [
        ({"status": 401, "json": {"detail": "Invalid API key"}}, True),
        ({"status": 403, "json": {"message": "Forbidden"}}, True),
        ({"status": 502, "body": "<html>Bad gateway</html>"}, True),
        ({"status": 404, "json": {"detail": "Not Found"}}, True),  # a wrong path
        ({"status": 200, "json": CHANGED_SHAPE}, True),
        ({"status": 200, "json": {"result": "FAIL", "message": "Order not found"}}, False),
        ({"status": 404, "json": {"result": "FAIL", "resultcode": "404"}}, False),
        ({"status": 200, "json": {"result": "SUCCESS", "data": []}}, False),
    ],
    ids=["401", "403", "502", "404-not-zenopay", "shape", "not-found", "404-zenopay", "empty"],
)
def test_only_answers_that_cannot_be_read_count_as_drift_never_not_found(answer, drift):
    fake = ScriptedAdapter()
    fake.reply(answer["status"], json=answer.get("json"), body=answer.get("body"))
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, fake):
        status = zenopay_order_status(order_id="order-1")
    assert status.known is False
    assert status.drift is drift
    assert status.no_data is not drift  # only ZenoPay's own "nothing for this order"


@pytest.mark.django_db
def test_not_found_for_every_order_never_alerts(requested, clock):
    deposits = [requested(amount=5_000 + n) for n in range(3)]
    fake = ScriptedAdapter().reply(json={"result": "FAIL", "message": "Order not found"}, times=60)
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, fake):
        for _ in range(8):
            clock.shift(dt.timedelta(minutes=5))
            payments_poll()
    assert len(fake.calls) >= 3 * 5
    assert not Alert.objects.filter(kind=DRIFT_ALERT).exists()
    assert all(DepositRequest.objects.get(pk=d.pk).status == "submitted" for d in deposits)


@pytest.mark.django_db
def test_a_short_burst_of_server_errors_does_not_alert(requested, clock):
    for n in range(4):
        requested(amount=5_000 + n)
    fake = ScriptedAdapter().reply(500, body="oops", times=4)
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, fake):
        clock.shift(dt.timedelta(seconds=31))
        assert payments_poll() == {"ignored": 4}  # four in a row, but within seconds
        fake.reply(json=_status_answer(), times=4)
        clock.shift(dt.timedelta(minutes=5))
        assert payments_poll() == {"ignored": 4}
    assert not Alert.objects.filter(kind=DRIFT_ALERT).exists()


@pytest.mark.django_db
def test_creates_that_keep_ending_outcome_unknown_alert_and_a_good_one_resolves(
    make_deposit, zenopay_sandbox, clock
):
    fake = ScriptedAdapter().fail(requests.ReadTimeout, times=3)
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, fake):
        for n in range(3):
            deposit = make_deposit(amount=5_000 + n)
            assert payment_initiate(deposit_id=deposit.pk) == "uncertain"
            clock.shift(dt.timedelta(minutes=1, seconds=1))
    alert = _open("create")
    assert alert is not None and "outcome unknown" in alert.detail
    assert _open("order-status") is None

    deposit = make_deposit(amount=6_000)  # through the sandbox again
    assert payment_initiate(deposit_id=deposit.pk) == "requested"
    assert _open("create") is None


@pytest.mark.django_db
def test_a_wrong_key_refusing_every_create_alerts(make_deposit, zenopay_sandbox, clock):
    fake = ScriptedAdapter().reply(
        401, json={"status": "error", "message": "Invalid API key"}, times=3
    )
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, fake):
        for n in range(3):
            deposit = make_deposit(amount=5_000 + n)
            assert payment_initiate(deposit_id=deposit.pk) == "refused"
            clock.shift(dt.timedelta(minutes=1, seconds=1))
    assert "HTTP 401" in _open("create").detail


@pytest.mark.django_db
def test_data_as_one_object_is_read_like_a_list_of_one():
    fake = ScriptedAdapter().reply(json=_status_answer("order-1", "COMPLETED"))
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, fake):
        status = zenopay_order_status(order_id="order-1")
    assert (status.known, status.payment_status, status.amount_tzs, status.drift) == (
        True,
        "COMPLETED",
        5000,
        False,
    )


@pytest.mark.django_db
def test_a_webhook_whose_check_answers_pending_rechecks_within_a_minute(requested, clock):
    deposit = requested()
    # Deep in the backoff: the next poll step would be 10 minutes away.
    DepositRequest.objects.filter(pk=deposit.pk).update(poll_attempts=4)

    assert deposit_check(deposit_id=deposit.pk, source="webhook") == "ignored"  # PENDING
    deposit.refresh_from_db()
    assert deposit.next_poll_at - START <= dt.timedelta(minutes=1)
    clock.shift(dt.timedelta(minutes=1))
    assert payments_poll() == {"ignored": 1}  # the poller re-checks it

    deposit.refresh_from_db()  # that check (a poll) goes back to the backoff
    assert deposit.next_poll_at - dt.datetime.now(tz=dt.UTC) == dt.timedelta(minutes=30)


@pytest.mark.django_db
def test_a_poll_answering_pending_keeps_its_backoff_step(requested, clock):
    deposit = requested()
    DepositRequest.objects.filter(pk=deposit.pk).update(poll_attempts=4)

    assert deposit_check(deposit_id=deposit.pk, source="poll") == "ignored"
    deposit.refresh_from_db()
    assert deposit.next_poll_at - START == dt.timedelta(minutes=10)
