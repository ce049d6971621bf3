"""Attaching a mint log to a deposit under four eyes on anvil (issue 14 point 3, done-when "a
log attached to a mint_failed deposit needs a second person"): a direct mint with an admin
key matching a real ``mint_failed`` deposit; the maker's request changes nothing, another
super admin's approval records the deposit minted through the recording path (claim,
transition naming the checker, AdminAction); the maker, the deposit's owner, a wrong amount
and a claimed log are refused."""

# ruff: noqa: F811 - tests take the imported fixtures as arguments
from __future__ import annotations

import pytest
from django.db import transaction

from core.exceptions import ConflictError, PermissionRefused
from core.models import AdminAction, DualControlRequest
from core.services import dual_control_action_get, dual_control_approve
from deposits.models import DepositRequest
from minting.models import MintLogClaim, MintTransaction
from minting.services.lanes import mint_route_to_safe
from minting.services.operator import mint_retry
from minting.services.runner import mint_client
from minting.services.safe import safe_batch_file
from reconciliation.models import ChainTransfer
from reconciliation.selectors import untracked_mints
from reconciliation.services.attach import (
    ATTACH_ACTION,
    AttachRefused,
    reconciliation_log_attach_request,
)
from reconciliation.services.matching import index_chain_run
from tests.deposits.conftest import (  # noqa: F401 - shared personas and banks
    amina,
    baraka,
    compliance,
    compliance_two,
    settlement_bank,
    superadmin,
)
from tests.factories import KycCaseFactory, WalletFactory, super_admin
from tests.minting.conftest import minting, paid_deposit  # noqa: F401 - shared fixtures
from tests.minting.test_lanes import failed_deposit
from tests.reconciliation.test_matching import admin_minter, indexing  # noqa: F401

UNITS = 10**18


def direct_mint(chain, to: str, units: int) -> tuple[str, int]:
    """A mint made on the contract with the admin key (holding MINTER_ROLE), outside the
    system."""
    receipt = chain.transact(chain.admin_key, chain.contract.functions.mint(to, units))
    assert receipt["status"] == 1
    return "0x" + bytes(receipt["transactionHash"]).hex(), receipt["logs"][0]["logIndex"]


@pytest.fixture
def checker(db):
    return super_admin(email="checker@ntzs.test")


@pytest.fixture
def failed(admin_minter, paid_deposit, settings):
    """A real mint_failed deposit of 5,000 TZS, and a direct mint of exactly it to its wallet."""
    deposit = failed_deposit(paid_deposit, admin_minter, settings)
    tx_hash, log_index = direct_mint(admin_minter, deposit.wallet.address, 5_000 * UNITS)
    return deposit, tx_hash, log_index


def _safe_lane(deposit, by):
    """A paid deposit taken out of the worker's hands, as an attach needs (the worker would
    mint a mint_pending deposit again while the request waits)."""
    mint_route_to_safe(deposit_id=deposit.pk, actor=by, reason="a hand-made mint is on chain")
    deposit.refresh_from_db()
    return deposit


def _request(deposit, tx_hash, log_index, maker):
    return reconciliation_log_attach_request(
        maker=maker,
        deposit_id=deposit.pk,
        tx_hash=tx_hash,
        log_index=log_index,
        evidence="minted by hand with the admin key during the incident of 2 Dec (OPS-88)",
    )


@pytest.mark.django_db
def test_a_log_attached_to_a_failed_deposit_needs_a_second_super_admin(failed, superadmin, checker):
    deposit, tx_hash, log_index = failed
    index_chain_run()
    assert [(log.tx_hash, log.log_index) for log in untracked_mints()] == [(tx_hash, log_index)]

    request = _request(deposit, tx_hash, log_index, superadmin)

    deposit.refresh_from_db()
    assert deposit.status == "mint_failed"  # the maker's request changes nothing
    assert not MintLogClaim.objects.filter(tx_hash=tx_hash).exists()
    assert request.action == ATTACH_ACTION and request.decision == "pending"
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=superadmin)

    dual_control_approve(request_id=request.pk, checker=checker, reason="matches OPS-88")

    deposit.refresh_from_db()
    assert (deposit.status, deposit.mint_tx_hash) == ("minted", tx_hash)
    claim = MintLogClaim.objects.get(tx_hash=tx_hash, log_index=log_index)
    assert claim.deposit_id == deposit.pk
    mint = MintTransaction.objects.get(deposit=deposit)
    assert (mint.status, mint.tx_hash, mint.log_index) == ("minted", tx_hash, log_index)
    transition = deposit.transitions.get(to_status="minted")
    assert (transition.from_status, transition.source, transition.actor) == (
        "mint_failed",
        "admin",
        checker,
    )
    done = AdminAction.objects.get(action=ATTACH_ACTION)
    assert (done.actor, done.target_id, done.outcome) == (checker, str(deposit.pk), "minted")
    assert done.params["tx_hash"] == tx_hash and done.params["log_index"] == log_index
    assert AdminAction.objects.filter(action=f"{ATTACH_ACTION}.request", actor=superadmin).exists()
    index_chain_run()
    assert untracked_mints() == []  # the log is claimed: no longer untracked


@pytest.mark.django_db
def test_the_deposits_owner_neither_asks_nor_approves(
    admin_minter, paid_deposit, settings, superadmin, checker
):
    owner = super_admin(email="owner@ntzs.test")
    KycCaseFactory(user=owner, approved=True)
    owner.test_wallet = WalletFactory(user=owner, verified=True)
    deposit = _safe_lane(paid_deposit(5_000, user=owner), superadmin)
    tx_hash, log_index = direct_mint(admin_minter, deposit.wallet.address, 5_000 * UNITS)
    with pytest.raises(PermissionRefused):
        _request(deposit, tx_hash, log_index, owner)

    request = _request(deposit, tx_hash, log_index, superadmin)
    with pytest.raises(PermissionRefused):
        dual_control_approve(request_id=request.pk, checker=owner)

    deposit.refresh_from_db()
    assert deposit.status == "mint_requires_safe"
    assert DualControlRequest.objects.get(pk=request.pk).decision == "pending"
    assert not MintLogClaim.objects.exists()
    dual_control_approve(request_id=request.pk, checker=checker)
    assert DepositRequest.objects.get(pk=deposit.pk).status == "minted"


@pytest.mark.django_db
def test_a_mint_of_another_amount_is_refused_with_a_sentence(
    admin_minter, paid_deposit, settings, superadmin
):
    deposit = _safe_lane(paid_deposit(5_000), superadmin)
    tx_hash, log_index = direct_mint(admin_minter, deposit.wallet.address, 4_999 * UNITS)
    with pytest.raises(AttachRefused, match="mints 4,999.* but deposit .* is for 5,000 TZS"):
        _request(deposit, tx_hash, log_index, superadmin)
    tx_hash, log_index = direct_mint(admin_minter, admin_minter.admin_address, 5_000 * UNITS)
    with pytest.raises(AttachRefused, match="not to the deposit's wallet"):
        _request(deposit, tx_hash, log_index, superadmin)
    assert not DualControlRequest.objects.exists()
    assert DepositRequest.objects.get(pk=deposit.pk).status == "mint_requires_safe"


@pytest.mark.django_db
def test_a_claimed_log_is_refused_at_the_request_and_at_the_approval(
    admin_minter, paid_deposit, settings, superadmin, checker
):
    first = _safe_lane(paid_deposit(5_000), superadmin)
    second = _safe_lane(paid_deposit(5_000), superadmin)
    tx_hash, log_index = direct_mint(admin_minter, first.wallet.address, 5_000 * UNITS)
    request = _request(first, tx_hash, log_index, superadmin)
    # the same log asked for the other deposit (same wallet, same amount) while it waits
    with pytest.raises(Exception, match="already waiting for a checker"):
        _request(second, tx_hash, log_index, superadmin)
    dual_control_approve(request_id=request.pk, checker=checker)

    with pytest.raises(AttachRefused, match="already claimed by deposit"):
        _request(second, tx_hash, log_index, superadmin)
    assert DepositRequest.objects.get(pk=second.pk).status == "mint_requires_safe"
    assert MintLogClaim.objects.filter(tx_hash=tx_hash).count() == 1


@pytest.mark.django_db
def test_a_log_claimed_after_the_request_fails_the_approval_and_changes_nothing(
    admin_minter, paid_deposit, settings, superadmin, checker
):
    first = _safe_lane(paid_deposit(5_000), superadmin)
    second = _safe_lane(paid_deposit(5_000), superadmin)
    tx_hash, log_index = direct_mint(admin_minter, first.wallet.address, 5_000 * UNITS)
    to_second = _request(second, tx_hash, log_index, superadmin)
    to_first = DualControlRequest.objects.create(
        action=ATTACH_ACTION,
        target_type="deposit",
        target_id=str(first.pk),
        params={**to_second.params, "deposit_id": str(first.pk)},
        evidence="x",
        maker=superadmin,
    )
    dual_control_approve(request_id=to_first.pk, checker=checker)

    with pytest.raises(AttachRefused, match="already claimed by deposit"):
        dual_control_approve(request_id=to_second.pk, checker=checker)
    assert DualControlRequest.objects.get(pk=to_second.pk).decision == "pending"
    assert DepositRequest.objects.get(pk=second.pk).status == "mint_requires_safe"


@pytest.mark.django_db
def test_from_the_page_to_the_queue_the_checker_reads_the_chain_and_approves(
    failed, superadmin, checker, client, staff_otp_login
):
    deposit, tx_hash, log_index = failed
    index_chain_run()
    log = ChainTransfer.objects.get(tx_hash=tx_hash, log_index=log_index)
    staff_otp_login(client, superadmin)
    page = client.get("/backstage/reconciliation/").content.decode()
    attach = f"/backstage/reconciliation/logs/{log.pk}/attach/"
    assert attach in page
    made = client.post(
        attach, {"deposit_id": str(deposit.pk), "evidence": "minted by hand (OPS-88)"}, follow=True
    )
    assert "Attach requested" in made.content.decode()
    request = DualControlRequest.objects.get(action=ATTACH_ACTION)
    assert DepositRequest.objects.get(pk=deposit.pk).status == "mint_failed"

    staff_otp_login(client, checker)
    decision = client.get(f"/backstage/four-eyes/{request.pk}/").content.decode()
    assert "Records the deposit minted by the mint log" in decision
    assert "confirmations" in decision and "via_safe" in decision  # the chain read again
    approved = client.post(f"/backstage/four-eyes/{request.pk}/approve/", {"approve-reason": "ok"})
    assert approved.status_code == 302
    assert DepositRequest.objects.get(pk=deposit.pk).status == "minted"
    after = client.get("/backstage/reconciliation/").content.decode()
    assert 'id="untracked-mints"' not in after and "No untracked mint." in after


@pytest.mark.django_db
def test_a_log_from_outside_the_safe_is_not_attached_while_an_exported_payload_can_mint(
    admin_minter, paid_deposit, settings, superadmin
):
    deposit = paid_deposit(10_000)
    assert deposit.status == "mint_requires_safe"
    safe_batch_file(deposit_ids=[deposit.pk], actor=superadmin)  # handed to the signers
    tx_hash, log_index = direct_mint(admin_minter, deposit.wallet.address, 10_000 * UNITS)

    with pytest.raises(AttachRefused, match="Safe payload for this deposit can still be executed"):
        _request(deposit, tx_hash, log_index, superadmin)

    assert not DualControlRequest.objects.filter(action=ATTACH_ACTION).exists()


@pytest.mark.django_db
def test_a_mint_pending_deposit_is_not_attached_while_the_worker_could_mint_it(
    admin_minter, paid_deposit, settings, superadmin
):
    deposit = paid_deposit(5_000)
    tx_hash, log_index = direct_mint(admin_minter, deposit.wallet.address, 5_000 * UNITS)
    with pytest.raises(ConflictError, match="Route it to the Safe lane first"):
        _request(deposit, tx_hash, log_index, superadmin)
    assert not DualControlRequest.objects.exists()


@pytest.mark.django_db
def test_a_failed_mint_is_not_retried_while_an_attach_waits_for_its_checker(
    failed, superadmin, compliance
):
    deposit, tx_hash, log_index = failed
    request = _request(deposit, tx_hash, log_index, superadmin)

    with pytest.raises(ConflictError, match="retrying would mint it twice"):
        mint_retry(client=mint_client(), deposit_id=deposit.pk, actor=compliance)

    deposit.refresh_from_db()
    assert deposit.status == "mint_failed"
    assert DualControlRequest.objects.get(pk=request.pk).decision == "pending"


@pytest.mark.django_db
def test_an_export_made_after_the_checkers_read_refuses_the_approval(
    admin_minter, paid_deposit, settings, superadmin, checker
):
    deposit = paid_deposit(10_000)  # above the Safe threshold: mint_requires_safe
    tx_hash, log_index = direct_mint(admin_minter, deposit.wallet.address, 10_000 * UNITS)
    request = _request(deposit, tx_hash, log_index, superadmin)
    attach = dual_control_action_get(ATTACH_ACTION)
    context = attach.prepare(request)  # the checker's read: no export yet
    safe_batch_file(deposit_ids=[deposit.pk], actor=superadmin)  # then an export

    with pytest.raises(ConflictError, match="exported for the Safe after the chain was read"):
        with transaction.atomic():
            attach.apply(request, checker, context)

    deposit.refresh_from_db()
    assert deposit.status == "mint_requires_safe"
    assert not MintLogClaim.objects.filter(tx_hash=tx_hash).exists()
