"""The deposit reference, two questions kept apart (DESIGN §7.4): the policy decides only how
a NEW mint is signed or exported; a mint already signed (or exported) is read back the way it
was made, whatever NTZS_MINT_WITH_REF says meanwhile."""

from __future__ import annotations

import pytest

from deposits.models import DepositRequest
from minting.contract_artifact import deposit_ref
from minting.models import MintAttempt, MintLogClaim, MintTransaction
from minting.services.confirm import mints_confirm
from minting.services.deposit_refs import signed_uses_ref
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from minting.services.safe import safe_awaiting_recheck, safe_batch_file, safe_mint_record
from tests.minting.test_safe_record import safe_fixture, safe_mint  # noqa: F401 - the fixture


def run_pipeline():
    return mint_jobs_process(client_factory=mint_client)


def confirm():
    return mints_confirm(client_factory=mint_client)


def supply(chain) -> int:
    return chain.contract.functions.totalSupply().call()


@pytest.mark.django_db
def test_a_plain_mint_in_flight_when_ntzs_mint_with_ref_changes_is_recorded_once(
    paid_deposit, minting, settings
):
    """Policy detected (the token has mintForDeposit); this deposit's reference was voided
    (a Safe route-back), so it is signed as a plain mint. While it is in flight the setting
    is stated True: the mint is still read as plain — recorded once, never failed, never
    signed again."""
    deposit = paid_deposit()
    minting.transact(
        minting.minter_key, minting.contract.functions.voidDepositRef(deposit_ref(deposit.pk))
    )
    minting.node.rpc("evm_setAutomine", False)
    try:
        run_pipeline()  # signed and sent, not mined
        assert MintTransaction.objects.get(deposit=deposit).uses_deposit_ref is False
        settings.NTZS_MINT_WITH_REF = True  # agrees with the token: the worker keeps running
        confirm()  # in flight: nothing to decide yet
    finally:
        minting.node.rpc("evm_setAutomine", True)
        minting.node.rpc("evm_mine")
    confirm()
    run_pipeline()
    confirm()
    deposit.refresh_from_db()
    assert deposit.status == "minted"
    assert not deposit.transitions.filter(to_status="mint_failed").exists()
    assert MintAttempt.objects.count() == 1
    assert MintLogClaim.objects.filter(deposit=deposit).count() == 1
    assert supply(minting) == 5_000 * 10**18


@pytest.mark.django_db
def test_a_mint_signed_before_uses_deposit_ref_existed_is_read_from_its_bytes(
    paid_deposit, minting
):
    with_ref, plain = paid_deposit(), paid_deposit(2_000)
    minting.transact(
        minting.minter_key, minting.contract.functions.voidDepositRef(deposit_ref(plain.pk))
    )
    run_pipeline()
    MintTransaction.objects.update(uses_deposit_ref=None)  # rows from before migration 0003
    assert signed_uses_ref(MintTransaction.objects.get(deposit=with_ref)) is True
    assert signed_uses_ref(MintTransaction.objects.get(deposit=plain)) is False
    confirm()
    assert set(DepositRequest.objects.values_list("status", flat=True)) == {"minted"}


@pytest.mark.django_db
def test_a_plain_safe_export_awaiting_confirmations_survives_a_policy_change(
    safe, minting, paid_deposit, compliance, settings
):
    """Exported as plain mint; the setting changes to mintForDeposit before the Safe mint is
    deep enough: it is still checked as a plain mint and recorded, not failed."""
    settings.MINT_CONFIRMATIONS = 3
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit(10_000)
    export = safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    assert export["calls"][0]["method"] == "mint"
    tx_hash = safe_mint(safe, minting, deposit, ref=False)
    assert (
        safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance)
        == "awaiting_confirmations"
    )
    settings.NTZS_MINT_WITH_REF = True
    minting.node.rpc("anvil_mine", hex(2))
    assert safe_awaiting_recheck(mint_client()) == 1
    deposit.refresh_from_db()
    assert (deposit.status, deposit.mint_tx_hash) == ("minted", tx_hash)
    assert MintTransaction.objects.get(deposit=deposit).status == "minted"


@pytest.mark.django_db
def test_a_plain_safe_export_is_recorded_as_exported_after_a_policy_change(
    safe, minting, paid_deposit, compliance, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit(10_000)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    tx_hash = safe_mint(safe, minting, deposit, ref=False)
    settings.NTZS_MINT_WITH_REF = True  # the policy of the day would expect DepositMinted
    assert safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance) == "minted"
    assert MintTransaction.objects.get(deposit=deposit).uses_deposit_ref is False


@pytest.mark.django_db
def test_a_new_safe_export_of_a_voided_reference_is_a_plain_mint(minting, paid_deposit, compliance):
    """The policy for new exports: the token has mintForDeposit, but this deposit's reference
    was voided (a route-back after an earlier export), so mintForDeposit would revert."""
    voided, fresh = paid_deposit(10_000), paid_deposit(10_000)
    minting.transact(
        minting.minter_key, minting.contract.functions.voidDepositRef(deposit_ref(voided.pk))
    )
    export = safe_batch_file(deposit_ids=[voided.pk, fresh.pk], actor=compliance)
    methods = {call["deposit_id"]: call["method"] for call in export["calls"]}
    assert methods == {str(voided.pk): "mint", str(fresh.pk): "mintForDeposit"}
