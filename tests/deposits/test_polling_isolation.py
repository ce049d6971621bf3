"""One deposit's failure never stops a loop (DESIGN §14 invariant 13): polling, expiry and
initiation runs handle each deposit on its own — log the error with the deposit id,
reschedule it with backoff, carry on."""

from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from django.conf import settings as django_settings
from requests.adapters import BaseAdapter

from deposits.models import DepositRequest
from deposits.services.payments import (
    deposits_expire_stale,
    payment_initiate,
    payments_initiate_due,
    payments_poll,
)
from deposits.zenopay import zenopay_session
from tests.support.zenopay_sandbox import mounted

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


class BreaksForOneOrder(BaseAdapter):
    """ZenoPay (the sandbox) except for one order id, whose calls blow up in a way nobody
    foresaw — not a timeout or a refusal the client knows how to read."""

    def __init__(self, inner: BaseAdapter) -> None:
        super().__init__()
        self.inner = inner
        self.broken: set[str] = set()
        self.seen: list[tuple[str, str]] = []  # (method, order id)

    def _order_id(self, request: requests.PreparedRequest) -> str:
        if request.method == "GET":
            return parse_qs(urlsplit(request.url).query).get("order_id", [""])[0]
        return json.loads(request.body or b"{}").get("order_id", "")

    def send(self, request, **kwargs):
        order_id = self._order_id(request)
        self.seen.append((request.method, order_id))
        if order_id in self.broken:
            raise RuntimeError(f"garbled answer for {order_id}")
        return self.inner.send(request, **kwargs)

    def close(self) -> None:
        pass


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def zenopay(zenopay_sandbox):
    adapter = BreaksForOneOrder(zenopay_sandbox.adapter)
    with mounted(zenopay_session(), django_settings.ZENOPAY_BASE_URL, adapter):
        yield adapter


@pytest.fixture
def three_paid(make_deposit, zenopay_sandbox, zenopay, clock, settings):
    """Three requested deposits, oldest first, all paid on the phone (webhooks dropped)."""
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 1_000
    deposits = []
    for amount in (1_000, 2_000, 3_000):
        deposit = make_deposit(amount=amount)
        assert payment_initiate(deposit_id=deposit.pk) == "requested"
        zenopay_sandbox.approve(deposit.pk, drop_webhook=True)
        deposits.append(deposit)
        clock.shift(dt.timedelta(seconds=1))
    return deposits


@pytest.mark.django_db
def test_a_poll_run_where_one_answer_raises_still_polls_and_reschedules_every_other(
    three_paid, zenopay, clock, caplog
):
    older, middle, newest = three_paid
    zenopay.broken.add(str(newest.pk))  # polled first: newest first
    clock.shift(dt.timedelta(seconds=31))
    with caplog.at_level(logging.ERROR, logger="deposits.zenopay"):
        assert payments_poll() == {"error": 1, "applied": 2}
    assert zenopay.seen[3] == ("GET", str(newest.pk))  # after the three creates
    for deposit in (older, middle):
        deposit.refresh_from_db()
        assert deposit.status == "mint_pending"
    newest.refresh_from_db()
    assert newest.status == "submitted"
    # Rescheduled with the usual backoff, so it is not first again on every run.
    assert newest.poll_attempts == 1
    assert newest.next_poll_at == START + dt.timedelta(seconds=3 + 31 + 30)
    assert f"ZenoPay poll failed deposit={newest.pk}" in caplog.text
    assert payments_poll() == {}  # not due again yet

    zenopay.broken.clear()  # whatever it was has passed: the next due poll confirms it
    clock.shift(dt.timedelta(seconds=30))
    assert payments_poll() == {"applied": 1}
    newest.refresh_from_db()
    assert newest.status == "mint_pending"


@pytest.mark.django_db
def test_an_expiry_run_where_one_last_check_raises_expires_the_others(
    make_deposit, zenopay_sandbox, zenopay, clock, caplog, settings
):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 1_000
    unpaid = [make_deposit(amount=1_000 + i) for i in range(3)]
    for deposit in unpaid:
        payment_initiate(deposit_id=deposit.pk)
    zenopay.broken.add(str(unpaid[0].pk))  # the oldest: first in the expiry run
    clock.shift(dt.timedelta(hours=73))
    with caplog.at_level(logging.ERROR, logger="deposits.zenopay"):
        assert deposits_expire_stale() == 2
    statuses = [DepositRequest.objects.get(pk=d.pk).status for d in unpaid]
    # Without its last check it may have been paid: never cancelled blind.
    assert statuses == ["submitted", "cancelled", "cancelled"]
    assert f"failed deposit={unpaid[0].pk}" in caplog.text


@pytest.mark.django_db
def test_an_initiation_run_where_one_create_raises_requests_the_others(
    make_deposit, zenopay, clock, caplog, settings
):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 1_000
    pending = [make_deposit(amount=1_000 + i) for i in range(3)]
    zenopay.broken.add(str(pending[0].pk))
    clock.shift(dt.timedelta(minutes=2))
    with caplog.at_level(logging.ERROR, logger="deposits.zenopay"):
        assert payments_initiate_due() == 2
    initiations = [DepositRequest.objects.get(pk=d.pk).initiation for d in pending]
    # The broken one was claimed before its call: never pushed twice, left to polling.
    assert initiations == ["requested", "requested", "requested"]
    assert f"ZenoPay initiation failed deposit={pending[0].pk}" in caplog.text
    assert zenopay.seen.count(("POST", str(pending[0].pk))) == 1
