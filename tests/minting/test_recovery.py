"""Crashes at each step, reverts, retries with proof, and on-chain idempotency."""

from __future__ import annotations

import logging

import pytest

from core.crashpoints import SimulatedCrash
from core.exceptions import ConflictError
from deposits.models import DepositRequest
from minting.chain import role_id
from minting.contract_artifact import deposit_ref
from minting.models import MintAttempt, MintLogClaim, MintTransaction, SignerAccount
from minting.services.confirm import mints_confirm
from minting.services.operator import mint_retry
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client


def run_pipeline():
    return mint_jobs_process(client_factory=mint_client)


def confirm():
    return mints_confirm(client_factory=mint_client)


def supply(chain) -> int:
    return chain.contract.functions.totalSupply().call()


def status_of(deposit) -> str:
    return DepositRequest.objects.get(pk=deposit.pk).status


@pytest.mark.django_db
def test_a_crash_inside_the_batch_transaction_leaves_nothing_behind(
    paid_deposit, minting, settings
):
    deposit = paid_deposit()
    settings.CRASH_POINTS = {"batch_before_commit"}
    with pytest.raises(SimulatedCrash):
        run_pipeline()
    assert status_of(deposit) == "mint_pending"
    assert MintAttempt.objects.count() == 0
    signer = SignerAccount.objects.get()
    assert signer.next_nonce == signer.last_mined_nonce  # no nonce without its attempt
    settings.CRASH_POINTS = set()
    run_pipeline()
    confirm()
    assert status_of(deposit) == "minted" and supply(minting) == 5_000 * 10**18


@pytest.mark.django_db
def test_a_crash_after_commit_before_send_is_recovered_with_the_same_bytes(
    paid_deposit, minting, settings, caplog
):
    deposit = paid_deposit()
    settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        run_pipeline()
    attempt = MintAttempt.objects.get()
    assert (attempt.status, status_of(deposit)) == ("signed", "mint_processing")
    settings.CRASH_POINTS = set()
    with caplog.at_level(logging.INFO):
        confirm()  # recovery: sends the committed bytes
    assert "Found existing txHash, checking receipt" in caplog.text
    confirm()
    assert status_of(deposit) == "minted"
    assert MintAttempt.objects.count() == 1 and supply(minting) == 5_000 * 10**18


@pytest.mark.django_db
def test_a_crash_after_send_before_receipt_is_confirmed_by_the_next_run(paid_deposit, minting):
    deposit = paid_deposit()
    run_pipeline()  # sent; the process "dies" before confirming
    assert status_of(deposit) == "mint_processing"
    confirm()
    assert status_of(deposit) == "minted"
    assert run_pipeline().signed == 0
    assert supply(minting) == 5_000 * 10**18


@pytest.mark.django_db
def test_a_crash_after_the_receipt_before_the_confirm_commit(paid_deposit, minting, settings):
    deposit = paid_deposit()
    run_pipeline()
    settings.CRASH_POINTS = {"confirm_before_commit"}
    with pytest.raises(SimulatedCrash):
        confirm()
    assert status_of(deposit) == "mint_processing"
    assert MintLogClaim.objects.count() == 0
    settings.CRASH_POINTS = set()
    confirm()
    assert status_of(deposit) == "minted" and MintLogClaim.objects.count() == 1
    assert supply(minting) == 5_000 * 10**18


@pytest.mark.django_db
def test_a_reverting_mint_fails_only_with_the_proof_and_a_retry_mints_once(
    paid_deposit, minting, caplog, superadmin, settings
):
    deposit = paid_deposit()
    wallet = deposit.wallet.address
    # Screening would hold a blacklisted recipient: blacklist after the batch is signed, so
    # the committed bytes land and revert on chain.
    settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        run_pipeline()
    settings.CRASH_POINTS = set()
    minting.transact(minting.admin_key, minting.contract.functions.blacklist(wallet))
    with caplog.at_level(logging.ERROR):
        confirm()  # sends the bytes: they revert on chain
        confirm()
    assert status_of(deposit) == "mint_failed"
    assert f"Mint failed deposit={deposit.pk}" in caplog.text
    assert MintTransaction.objects.get(deposit=deposit).reserved_tzs == 0
    minting.transact(minting.admin_key, minting.contract.functions.unblacklist(wallet))
    client = mint_client()
    assert mint_retry(client=client, deposit_id=deposit.pk, actor=superadmin) == "queued"
    assert status_of(deposit) == "mint_pending"
    run_pipeline()
    confirm()
    assert status_of(deposit) == "minted"
    assert supply(minting) == 5_000 * 10**18
    assert MintAttempt.objects.filter(status="mined_reverted").count() == 1
    assert mint_retry(client=client, deposit_id=deposit.pk) == "nothing to do"


@pytest.mark.django_db
def test_a_retry_while_an_earlier_attempt_is_unmined_is_refused(paid_deposit, minting):
    deposit = paid_deposit()
    minting.node.rpc("evm_setAutomine", False)
    try:
        run_pipeline()  # sent, not mined
        DepositRequest.objects.filter(pk=deposit.pk).update(status="mint_failed")
        MintTransaction.objects.filter(deposit=deposit).update(status="failed", reserved_tzs=0)
        with pytest.raises(ConflictError, match="an earlier transaction can still land"):
            mint_retry(client=mint_client(), deposit_id=deposit.pk)
    finally:
        minting.node.rpc("evm_setAutomine", True)
        minting.node.rpc("evm_mine")
    # The chain fact wins: the earlier attempt landed, so the deposit is minted, once.
    mint_retry(client=mint_client(), deposit_id=deposit.pk)
    assert status_of(deposit) == "minted"
    assert supply(minting) == 5_000 * 10**18
    _rebalance_for_status_table()


def _rebalance_for_status_table() -> None:
    """The forced "failed" above released the reservation by hand; the ledger must match."""
    from django.db.models import Sum

    from minting.models import DailyIssuance

    for day in DailyIssuance.objects.all():
        held = (
            MintTransaction.objects.filter(reserved_day=day.day).aggregate(t=Sum("reserved_tzs"))[
                "t"
            ]
            or 0
        )
        DailyIssuance.objects.filter(day=day.day).update(reserved_tzs=held)


@pytest.mark.django_db
def test_a_deposit_already_minted_on_chain_is_resolved_not_minted_again(
    paid_deposit, minting, caplog
):
    deposit = paid_deposit()
    # The mint landed but the books never heard of it (e.g. a lost database write).
    minting.transact(
        minting.minter_key,
        minting.contract.functions.mintForDeposit(
            deposit.wallet.address, 5_000 * 10**18, deposit_ref(deposit.pk)
        ),
    )
    with caplog.at_level(logging.INFO):
        result = run_pipeline()
    assert (result.resolved, result.signed) == (1, 0)
    assert "Mint already completed (idempotency)" in caplog.text
    assert "Batch already completed (idempotency) deposits=1 resolved=1" in caplog.text
    assert status_of(deposit) == "minted"
    assert supply(minting) == 5_000 * 10**18


@pytest.mark.django_db
def test_a_second_mint_of_the_same_deposit_reverts_on_chain_and_is_resolved(
    paid_deposit, minting, settings, caplog
):
    deposit = paid_deposit()
    settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        run_pipeline()
    settings.CRASH_POINTS = set()
    # Another minter (e.g. the Safe) mints the same reference first; our committed bytes then
    # land and revert on chain with DepositAlreadyMinted.
    minting.transact(
        minting.admin_key,
        minting.contract.functions.grantRole(role_id("MINTER_ROLE"), minting.admin_address),
    )
    minting.transact(
        minting.admin_key,
        minting.contract.functions.mintForDeposit(
            deposit.wallet.address, 5_000 * 10**18, deposit_ref(deposit.pk)
        ),
    )
    with caplog.at_level(logging.INFO):
        confirm()
        confirm()
    assert "Mint already completed (idempotency)" in caplog.text
    assert status_of(deposit) == "minted"
    assert MintAttempt.objects.get().status == "mined_reverted"
    assert supply(minting) == 5_000 * 10**18


@pytest.mark.django_db
def test_stating_no_deposit_references_for_a_token_that_has_them_stops_the_worker(
    paid_deposit, minting, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit()
    result = run_pipeline()
    assert result.preflight_reason.startswith("NTZS_MINT_WITH_REF=False contradicts")
    assert status_of(deposit) == "mint_pending" and MintAttempt.objects.count() == 0


@pytest.mark.django_db
def test_a_voided_reference_is_minted_without_it_exactly_once(paid_deposit, minting):
    """After a Safe export was voided (route-back to the worker), the worker mints the
    deposit with plain mint: the reference can no longer be used."""
    deposit = paid_deposit()
    minting.transact(
        minting.minter_key, minting.contract.functions.voidDepositRef(deposit_ref(deposit.pk))
    )
    run_pipeline()
    confirm()
    assert status_of(deposit) == "minted"
    mint = MintTransaction.objects.get(deposit=deposit)
    assert mint.uses_deposit_ref is False
    assert supply(minting) == 5_000 * 10**18
    assert minting.contract.functions.isDepositMinted(deposit_ref(deposit.pk)).call() is False
