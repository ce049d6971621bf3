"""A deposit larger than what is left of today's cap is marked ``cap_exceeded`` (DESIGN §7
step 0): once per day with the log line, no transition row, never over a mint a batch is
claiming, at most a batch per run, oldest first; it mints after the UTC rollover or at once
under a cap override."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
import time_machine
from django.db import connection

from backstage.health import queue_counts
from core.clock import today_utc
from deposits.models import DepositRequest
from minting.models import DailyIssuance, MintTransaction
from minting.selectors import mints_deferred_by_cap_count
from minting.services.confirm import mints_confirm
from minting.services.operator import cap_override, mint_status
from minting.services.pipeline import mint_jobs_process, mints_cap_deferred_mark
from minting.services.runner import mint_client

DEFERRING = "daily cap reached, deferring"


def run_pipeline():
    return mint_jobs_process(client_factory=mint_client)


def confirm():
    return mints_confirm(client_factory=mint_client)


def status_of(deposit) -> str:
    return DepositRequest.objects.get(pk=deposit.pk).status


def mint_of(deposit) -> MintTransaction:
    return MintTransaction.objects.get(deposit=deposit)


@pytest.mark.django_db
def test_a_deposit_over_what_is_left_is_marked_once_a_day_and_mints_after_the_rollover(
    paid_deposit, minting, settings, caplog
):
    settings.DAILY_ISSUANCE_CAP_TZS = 10_000
    day_one = dt.datetime(2026, 11, 2, 22, 0, tzinfo=dt.UTC)
    with time_machine.travel(day_one, tick=False) as clock:
        small = [paid_deposit(4_000), paid_deposit(3_000)]
        run_pipeline()
        confirm()
        clock.shift(dt.timedelta(minutes=1))
        big = paid_deposit(8_000)  # 3,000 left: never a candidate today
        transitions = big.transitions.count()
        clock.shift(dt.timedelta(minutes=1))
        fits = paid_deposit(2_000)
        with caplog.at_level(logging.WARNING, logger="minting"):
            result = run_pipeline()
            confirm()
            run_pipeline()
            confirm()
        assert result.deferred == 1
        assert [status_of(d) for d in (*small, fits)] == ["minted"] * 3
        assert status_of(big) == "mint_pending"
        mint = mint_of(big)
        assert (mint.status, mint.cap_deferred_on) == ("cap_exceeded", dt.date(2026, 11, 2))
        assert caplog.text.count(DEPOSIT_LINE := f"{DEFERRING} deposit={big.pk}") == 1
        assert caplog.text.count(DEFERRING) == 1
        assert big.transitions.count() == transitions  # marked without a transition row
        assert mints_deferred_by_cap_count() == 1
        assert mint_status()["deferred_by_cap"] == 1  # mint_status shows them
        assert queue_counts()["deferred by the cap"] == 1  # and queue_status
    with time_machine.travel(dt.datetime(2026, 11, 3, 0, 1, tzinfo=dt.UTC), tick=False):
        assert mints_deferred_by_cap_count() == 0  # yesterday's mark
        run_pipeline()
        confirm()
        assert status_of(big) == "minted"
    assert caplog.text.count(DEPOSIT_LINE) == 1
    issued = dict(DailyIssuance.objects.values_list("day", "issued_tzs"))
    assert issued == {dt.date(2026, 11, 2): 9_000, dt.date(2026, 11, 3): 8_000}


@pytest.mark.django_db
def test_a_deposit_still_too_big_the_next_day_is_logged_again(
    paid_deposit, minting, settings, caplog
):
    settings.DAILY_ISSUANCE_CAP_TZS = 1_000
    with time_machine.travel(dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC), tick=False):
        big = paid_deposit(5_000)
        with caplog.at_level(logging.WARNING, logger="minting"):
            run_pipeline()
            run_pipeline()
    with time_machine.travel(dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC), tick=False):
        with caplog.at_level(logging.WARNING, logger="minting"):
            run_pipeline()
            run_pipeline()
    assert caplog.text.count(f"{DEFERRING} deposit={big.pk}") == 2  # once per day
    assert mint_of(big).cap_deferred_on == dt.date(2026, 11, 3)
    assert status_of(big) == "mint_pending"


@pytest.mark.django_db
def test_a_cap_override_lets_a_marked_deposit_through_at_once(
    paid_deposit, minting, settings, superadmin
):
    settings.DAILY_ISSUANCE_CAP_TZS = 1_000
    deposit = paid_deposit(5_000)
    run_pipeline()
    assert mint_of(deposit).status == "cap_exceeded"
    cap_override(day=today_utc(), cap_tzs=10_000, reason="launch day", actor=superadmin)
    run_pipeline()
    confirm()
    assert status_of(deposit) == "minted"
    assert mint_of(deposit).status == "minted"
    assert DailyIssuance.objects.get().issued_tzs == 5_000


@pytest.mark.django_db
def test_at_most_a_batch_is_marked_per_run_oldest_first(paid_deposit, minting, settings):
    settings.DAILY_ISSUANCE_CAP_TZS = 1_000
    settings.MINT_BATCH_SIZE = 2
    deposits = [paid_deposit(5_000) for _ in range(3)]
    run_pipeline()
    marked = [
        MintTransaction.objects.filter(deposit=d, status="cap_exceeded").exists() for d in deposits
    ]
    assert marked == [True, True, False]
    run_pipeline()
    assert all(mint_of(d).status == "cap_exceeded" for d in deposits)
    assert mints_deferred_by_cap_count() == 3


@pytest.mark.django_db
def test_a_held_deposit_is_not_marked(paid_deposit, minting, settings):
    settings.DAILY_ISSUANCE_CAP_TZS = 1_000
    deposit = paid_deposit(5_000)
    DepositRequest.objects.filter(pk=deposit.pk).update(hold_reason="incident review")
    assert mints_cap_deferred_mark(contract=minting.address, limit=10) == 0
    assert not MintTransaction.objects.filter(deposit=deposit).exists()


@pytest.mark.django_db(transaction=True)
def test_a_claim_racing_the_cap_marking_keeps_its_signed_mint(
    paid_deposit, minting, settings, caplog
):
    """A batch holds its claim open (paused before its commit) while another worker, which
    sees a smaller cap, marks: the claimed deposit is skipped, its mint stays signed/sent."""
    settings.DAILY_ISSUANCE_CAP_TZS = 10_000
    deposit = paid_deposit(5_000)
    held, release = threading.Event(), threading.Event()

    def hold_the_claim():
        held.set()
        assert release.wait(30), "the test never released the batch"

    settings.PAUSE_POINTS = {"batch_before_commit": hold_the_claim}
    errors: list[BaseException] = []

    def in_thread(fn):
        def run():
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    batch = in_thread(run_pipeline)
    assert held.wait(30), "the batch never reached its commit"
    settings.PAUSE_POINTS = {}
    settings.DAILY_ISSUANCE_CAP_TZS = 1_000  # what the other worker sees: 5,000 cannot fit
    marked: list[int] = []
    with caplog.at_level(logging.WARNING, logger="minting"):
        marker = in_thread(
            lambda: marked.append(mints_cap_deferred_mark(contract=minting.address, limit=10))
        )
        marker.join(15)
    assert not marker.is_alive(), "the marking waited for the claim's lock"
    release.set()
    batch.join(30)
    assert errors == []
    assert marked == [0]
    assert DEFERRING not in caplog.text
    mint = mint_of(deposit)
    assert mint.status in ("signed", "sent") and mint.cap_deferred_on is None
    assert status_of(deposit) == "mint_processing"
    settings.DAILY_ISSUANCE_CAP_TZS = 10_000
    confirm()
    assert status_of(deposit) == "minted"
