"""The steps of one confirm run (DESIGN §7.3, §7.4, §7.8), each called alone: nonce sync,
confirm mined, recover unmined, settle, ledger check (the lease sweep has its own test in
test_stuck_transactions.py). ``mints_confirm`` runs them in this order."""

from __future__ import annotations

import pytest

from core.crashpoints import SimulatedCrash
from deposits.models import DepositRequest
from minting.models import MintAttempt, MintTransaction, SignerAccount
from minting.services.confirm import (
    minter_signer,
    mints_confirm,
    mints_finished_settle,
    mints_mined_confirm,
    mints_unmined_recover,
    signer_ledger_check,
    signer_nonce_sync,
)
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import confirm_run, mint_client
from minting.services.safe import safe_mint_record
from tests.minting.test_safe_record import safe_fixture, safe_mint  # noqa: F401 - the fixture


def status_of(deposit) -> str:
    return DepositRequest.objects.get(pk=deposit.pk).status


def signed_not_sent(paid_deposit, settings, amount: int = 5_000):
    """A committed batch whose bytes were never sent (a crash after the commit)."""
    deposit = paid_deposit(amount)
    settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        mint_jobs_process(client_factory=mint_client)
    settings.CRASH_POINTS = set()
    return deposit


@pytest.mark.django_db
def test_nonce_sync_stores_the_mined_count_and_never_lowers_it(paid_deposit, minting):
    paid_deposit()
    mint_jobs_process(client_factory=mint_client)  # anvil mines it at once
    signer = minter_signer()
    assert signer.last_mined_nonce == 0
    assert signer_nonce_sync(client=mint_client(), signer=signer) == 1
    assert SignerAccount.objects.get().last_mined_nonce == 1
    SignerAccount.objects.update(last_mined_nonce=7)  # ahead of the node: never lowered
    assert signer_nonce_sync(client=mint_client(), signer=signer) == 1
    assert SignerAccount.objects.get().last_mined_nonce == 7
    SignerAccount.objects.update(last_mined_nonce=1)
    mints_confirm(client_factory=mint_client)


@pytest.mark.django_db
def test_confirm_mined_records_a_landed_mint_and_nothing_else(paid_deposit, minting):
    deposit = paid_deposit()
    mint_jobs_process(client_factory=mint_client)
    client, signer = mint_client(), minter_signer()
    assert mints_mined_confirm(client=client, signer=signer, mined=0) == {}  # nonce 0 unmined
    assert status_of(deposit) == "mint_processing"
    assert mints_mined_confirm(client=client, signer=signer, mined=1) == {"minted": 1}
    assert status_of(deposit) == "minted"
    assert MintAttempt.objects.get().status == "mined_ok"


@pytest.mark.django_db
def test_recover_unmined_sends_the_committed_bytes_without_recording(
    paid_deposit, minting, settings
):
    deposit = signed_not_sent(paid_deposit, settings)
    client, signer = mint_client(), minter_signer()
    assert mints_unmined_recover(client=client, signer=signer, mined=0) == {"sent": 1}
    attempt = MintAttempt.objects.get()
    assert attempt.status == "sent" and attempt.kind == "mint"
    assert status_of(deposit) == "mint_processing"  # recording is the next run's
    assert mints_unmined_recover(client=client, signer=signer, mined=1) == {}
    mints_confirm(client_factory=mint_client)
    assert status_of(deposit) == "minted"
    assert MintAttempt.objects.count() == 1


@pytest.mark.django_db
def test_settle_fails_a_mint_only_once_its_attempts_are_terminal(paid_deposit, minting, settings):
    deposit = signed_not_sent(paid_deposit, settings)
    minting.transact(
        minting.admin_key, minting.contract.functions.blacklist(deposit.wallet.address)
    )
    client, signer = mint_client(), minter_signer()
    assert mints_finished_settle(client=client) == {}  # its attempt is still live
    mints_unmined_recover(client=client, signer=signer, mined=0)  # sent: reverts on chain
    mined = signer_nonce_sync(client=client, signer=signer)
    assert mints_mined_confirm(client=client, signer=signer, mined=mined) == {"reverted": 1}
    assert status_of(deposit) == "mint_processing"
    assert mints_finished_settle(client=client) == {"failed": 1}
    assert status_of(deposit) == "mint_failed"
    assert MintTransaction.objects.get().status == "failed"


@pytest.mark.django_db
def test_ledger_check_fills_a_gap_only_when_nothing_is_in_flight(paid_deposit, minting, settings):
    signed_not_sent(paid_deposit, settings)
    client, signer = mint_client(), minter_signer()
    assert signer_ledger_check(client=client, signer=signer) == ""  # an attempt is live
    # The live attempt is lost (e.g. rejected by hand during an incident): nonce 0 is a gap.
    MintAttempt.objects.update(status="rejected")
    assert signer_ledger_check(client=client, signer=signer) == "gap_filled"
    fill = MintAttempt.objects.get(kind="nonce_fill")
    assert (fill.nonce, fill.status) == (0, "sent")
    MintAttempt.objects.filter(kind="mint").update(status="rejected")
    mints_confirm(client_factory=mint_client)  # the fill lands; the mint is proven dead
    assert MintAttempt.objects.get(kind="nonce_fill").status == "mined_ok"
    assert DepositRequest.objects.get().status == "mint_failed"


@pytest.mark.django_db
def test_the_confirm_runner_not_mints_confirm_rechecks_waiting_safe_mints(
    safe, minting, paid_deposit, compliance, settings
):
    settings.MINT_CONFIRMATIONS = 3
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit)
    safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance)
    minting.node.rpc("anvil_mine", hex(2))
    mints_confirm(client_factory=mint_client)  # the worker's own transactions only
    assert status_of(deposit) == "mint_requires_safe"
    assert confirm_run() == {"safe_recorded": 1}
    assert status_of(deposit) == "minted"
