"""Stuck and refused transactions (DESIGN §7.4): priced out, refused for good, no gas, a
nonce used outside the system, a gap in the ledger, and the claim-lease sweep."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine

from core.crashpoints import SimulatedCrash
from core.models import Alert
from deposits.models import DepositRequest
from minting.models import MintAttempt, MintTransaction, SignerAccount
from minting.services.confirm import claim_lease_sweep, mints_confirm
from minting.services.operator import mint_retry
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client


def run_pipeline():
    return mint_jobs_process(client_factory=mint_client)


def confirm():
    return mints_confirm(client_factory=mint_client)


def status_of(deposit) -> str:
    return DepositRequest.objects.get(pk=deposit.pk).status


def supply(chain) -> int:
    return chain.contract.functions.totalSupply().call()


def _signed_not_sent(paid_deposit, settings):
    deposit = paid_deposit()
    settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        run_pipeline()
    settings.CRASH_POINTS = set()
    return deposit


@pytest.mark.django_db
def test_a_priced_out_transaction_is_bumped_above_the_new_base_fee(paid_deposit, minting, settings):
    deposit = _signed_not_sent(paid_deposit, settings)
    node = minting.node
    node.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**14))  # far above the signed cap
    node.rpc("evm_mine")
    confirm()  # the send is refused (below base fee) and bumped at once
    confirm()
    attempts = list(MintAttempt.objects.order_by("created_at"))
    assert [a.kind for a in attempts] == ["mint", "fee_bump"]
    assert attempts[0].nonce == attempts[1].nonce
    assert int(attempts[1].max_fee_per_gas) > 10**14 // 2  # above the new base fee
    assert status_of(deposit) == "minted"
    assert supply(minting) == 5_000 * 10**18
    node.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**9))  # leave the node as found


@pytest.mark.django_db
def test_an_incurable_refusal_is_filled_failed_and_retried_once(
    paid_deposit, minting, settings, superadmin
):
    settings.MINT_GAS_LIMIT = 20_000  # below intrinsic gas: refused at submission, for good
    deposit = paid_deposit()
    run_pipeline()
    confirm()  # the refusal marks the attempt rejected and fills its nonce
    confirm()  # the fill is mined: the nonce is proven dead
    kinds = list(MintAttempt.objects.order_by("created_at").values_list("kind", "status"))
    assert kinds == [("mint", "rejected"), ("nonce_fill", "mined_ok")]
    assert status_of(deposit) == "mint_failed"
    settings.MINT_GAS_LIMIT = 150_000
    assert mint_retry(client=mint_client(), deposit_id=deposit.pk, actor=superadmin) == "queued"
    run_pipeline()
    confirm()
    assert status_of(deposit) == "minted"
    assert supply(minting) == 5_000 * 10**18


@pytest.mark.django_db
def test_no_gas_stops_sending_and_the_same_bytes_go_out_after_a_top_up(
    paid_deposit, minting, settings
):
    deposit = _signed_not_sent(paid_deposit, settings)
    node = minting.node
    node.rpc("anvil_setBalance", minting.minter_address, "0x0")
    confirm()
    assert Alert.objects.filter(kind="minter gas low", resolved_at__isnull=True).exists()
    assert MintAttempt.objects.get().status == "signed"
    other = paid_deposit(2_000)
    assert "gas balance" in run_pipeline().preflight_reason  # no new batch meanwhile
    node.rpc("anvil_setBalance", minting.minter_address, hex(10**21))
    confirm()
    confirm()
    assert status_of(deposit) == "minted"
    assert MintAttempt.objects.filter(mint_transaction__deposit=deposit).count() == 1
    run_pipeline()
    confirm()
    assert status_of(other) == "minted"
    assert not Alert.objects.filter(kind="minter gas low", resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_nonce_used_outside_the_system_stops_sending(paid_deposit, minting, caplog):
    first = paid_deposit()
    run_pipeline()
    confirm()
    minting.node.rpc("anvil_setBalance", minting.minter_address, hex(10**21))
    # Someone uses the minter key directly.
    minting.w3.eth.send_raw_transaction(
        minting.w3.eth.account.sign_transaction(
            {
                "to": minting.admin_address,
                "value": 1,
                "gas": 21_000,
                "chainId": 31337,
                "nonce": minting.w3.eth.get_transaction_count(minting.minter_address),
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
            },
            minting.minter_key,
        ).raw_transaction
    )
    with caplog.at_level(logging.ERROR):
        confirm()
    assert "Minter nonce used outside the system" in caplog.text
    assert Alert.objects.filter(kind="minter nonce used outside the system").exists()
    assert SignerAccount.objects.get().sending_enabled is False
    second = paid_deposit(2_000)
    assert "sending is disabled" in run_pipeline().preflight_reason
    assert status_of(second) == "mint_pending" and status_of(first) == "minted"


@pytest.mark.django_db
def test_a_gap_in_the_ledger_is_filled(paid_deposit, minting):
    paid_deposit()
    run_pipeline()
    confirm()
    SignerAccount.objects.update(next_nonce=SignerAccount.objects.get().next_nonce + 2)
    assert confirm().get("gap_filled") == 1
    confirm()
    fills = MintAttempt.objects.filter(kind="nonce_fill")
    assert fills.count() == 2 and set(fills.values_list("status", flat=True)) == {"mined_ok"}


@pytest.mark.django_db
@pytest.mark.forced_status
def test_the_claim_lease_sweep_returns_a_claim_without_attempts(paid_deposit, minting):
    """Defensive (step 1 makes it unreachable): a constructed claim with no attempt."""
    from deposits.services.transitions import deposits_claim
    from minting.models import DailyIssuance

    deposit = paid_deposit()
    deposits_claim(deposit_ids=[deposit.pk])
    mint = MintTransaction.objects.create(
        deposit=deposit,
        chain_id=31337,
        contract_address=minting.address,
        to_address=deposit.wallet.address,
        amount_units=5_000 * 10**18,
        status="signed",
        reserved_day=dt.date(2026, 11, 23),
        reserved_tzs=5_000,
    )
    DailyIssuance.objects.create(day=dt.date(2026, 11, 23), reserved_tzs=5_000)
    assert claim_lease_sweep() == 0  # not yet
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)):
        assert claim_lease_sweep() == 1
    assert status_of(deposit) == "mint_pending"
    mint.refresh_from_db()
    assert (mint.reserved_tzs, mint.status) == (0, "pending")
    assert DailyIssuance.objects.get().reserved_tzs == 0


@pytest.mark.django_db
@pytest.mark.parametrize("crash", ["replacement_before_send", "sent_before_status"])
def test_a_crash_around_a_fee_bump_is_recovered_and_minted_once(
    paid_deposit, minting, settings, crash
):
    """Bump committed but not sent; bump sent but its status not updated."""
    deposit = _signed_not_sent(paid_deposit, settings)
    node = minting.node
    node.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**14))
    node.rpc("evm_mine")
    settings.CRASH_POINTS = {crash}
    try:
        with pytest.raises(SimulatedCrash):
            confirm()
        settings.CRASH_POINTS = set()
        bump = MintAttempt.objects.get(kind="fee_bump")
        assert bump.status == "signed"  # committed before the send, never lost
        confirm()
        confirm()
    finally:
        settings.CRASH_POINTS = set()
        node.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**9))
    assert status_of(deposit) == "minted"
    assert MintAttempt.objects.filter(kind="fee_bump").count() == 1
    assert supply(minting) == 5_000 * 10**18
