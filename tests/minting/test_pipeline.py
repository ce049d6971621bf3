"""The mint pipeline against the real NTZS on anvil: batches, confirmation, cap, pause."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine

from deposits.models import DepositRequest
from minting.models import DailyIssuance, MintAttempt, MintLogClaim, MintTransaction
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client


def run_pipeline():
    return mint_jobs_process(client_factory=mint_client)


def confirm():
    return mints_confirm(client_factory=mint_client)


def balance(chain, address):
    return chain.contract.functions.balanceOf(address).call()


@pytest.mark.django_db
def test_a_paid_deposit_is_minted_once_with_its_log_claimed(paid_deposit, minting, caplog):
    deposit = paid_deposit(5_000)
    with caplog.at_level(logging.INFO):
        result = run_pipeline()
        assert result.signed == 1 and result.sent == {"sent": 1}
        deposit.refresh_from_db()
        assert deposit.status == "mint_processing"
        confirm()
    deposit.refresh_from_db()
    assert deposit.status == "minted" and deposit.mint_tx_hash
    assert balance(minting, deposit.wallet.address) == 5_000 * 10**18
    assert minting.contract.functions.totalSupply().call() == 5_000 * 10**18
    claim = MintLogClaim.objects.get(deposit=deposit)
    assert claim.tx_hash == deposit.mint_tx_hash
    assert f"Mint confirmed deposit={deposit.pk} tx={deposit.mint_tx_hash}" in caplog.text
    day = DailyIssuance.objects.get()
    assert (day.reserved_tzs, day.issued_tzs) == (0, 5_000)
    assert run_pipeline().signed == 0 and confirm() == {}


@pytest.mark.django_db
def test_a_batch_signs_consecutive_nonces_in_one_transaction(paid_deposit, minting):
    deposits = [paid_deposit(1_000 + i) for i in range(5)]
    result = run_pipeline()
    assert result.signed == 5
    nonces = sorted(MintAttempt.objects.values_list("nonce", flat=True))
    assert nonces == list(range(nonces[0], nonces[0] + 5))
    confirm()
    assert set(DepositRequest.objects.values_list("status", flat=True)) == {"minted"}
    assert (
        minting.contract.functions.totalSupply().call()
        == sum(d.amount_tzs for d in deposits) * 10**18
    )


@pytest.mark.django_db
def test_a_paused_token_leaves_jobs_waiting_with_the_reason(paid_deposit, minting):
    deposit = paid_deposit()
    minting.transact(minting.admin_key, minting.contract.functions.pause())
    result = run_pipeline()
    assert result.preflight_reason == "the token is paused"
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending" and MintAttempt.objects.count() == 0
    minting.transact(minting.admin_key, minting.contract.functions.unpause())
    run_pipeline()
    confirm()
    deposit.refresh_from_db()
    assert deposit.status == "minted"
    assert minting.contract.functions.totalSupply().call() == 5_000 * 10**18


@pytest.mark.django_db
def test_a_big_deposit_over_the_cap_does_not_block_smaller_ones(
    paid_deposit, minting, settings, caplog
):
    settings.DAILY_ISSUANCE_CAP_TZS = 10_000
    first = paid_deposit(8_000)
    too_big = paid_deposit(5_000)
    small = [paid_deposit(1_000), paid_deposit(1_000)]
    with caplog.at_level(logging.WARNING):
        run_pipeline()
        run_pipeline()
        confirm()
        run_pipeline()
    assert caplog.text.count("daily cap reached, deferring") == 1  # once per deposit per day
    status = {d.pk: DepositRequest.objects.get(pk=d.pk).status for d in [first, too_big, *small]}
    assert [status[d.pk] for d in (first, *small)] == ["minted"] * 3
    assert status[too_big.pk] == "mint_pending"
    assert MintTransaction.objects.get(deposit=too_big).status == "cap_exceeded"
    assert not too_big.transitions.filter(to_status="mint_processing").exists()
    day = DailyIssuance.objects.get()
    assert (day.issued_tzs, day.reserved_tzs) == (10_000, 0)


@pytest.mark.django_db
def test_utc_rollover_releases_deferred_deposits(paid_deposit, minting, settings):
    settings.DAILY_ISSUANCE_CAP_TZS = 6_000
    with time_machine.travel(dt.datetime(2026, 11, 2, 23, 59, tzinfo=dt.UTC), tick=False) as clock:
        first = paid_deposit(5_000)
        clock.shift(dt.timedelta(seconds=1))  # oldest first: the first one is minted today
        second = paid_deposit(5_000)
        run_pipeline()
        confirm()
    second.refresh_from_db()
    assert second.status == "mint_pending"
    with time_machine.travel(dt.datetime(2026, 11, 3, 0, 1, tzinfo=dt.UTC), tick=False):
        run_pipeline()
        confirm()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("minted", "minted")
    assert list(DailyIssuance.objects.order_by("day").values_list("issued_tzs", flat=True)) == [
        5_000,
        5_000,
    ]
