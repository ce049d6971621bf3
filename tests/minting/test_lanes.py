"""Lane changes and refunds of paid, unminted deposits (DESIGN §5, §7.8, §7.9): super admin
only for routes, four eyes for refunds, the failure proof for failed deposits, and no route
back or refund while an exported Safe payload can still mint."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from eth_account import Account

from core.crashpoints import SimulatedCrash
from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.models import AdminAction, DualControlRequest
from core.services import dual_control_approve
from deposits.models import DepositRequest, DepositTransition
from minting.contract_artifact import deposit_ref
from minting.models import DailyIssuance, MintAttempt, MintTransaction
from minting.services.confirm import mints_confirm
from minting.services.lanes import (
    PAYLOAD_LIVE,
    SafePayloadLive,
    mint_refund_record,
    mint_route_to_safe,
    mint_route_to_worker,
    safe_export_void_payload,
    safe_nonce_consumed_record,
)
from minting.services.operator import mint_retry
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from minting.services.safe import SafeRecordRefused, safe_batch_file, safe_mint_record
from tests.minting.test_safe_record import (
    calldata,
    receipt_of,
    safe_fixture,  # noqa: F401 - the `safe` fixture
    safe_mint,
)

UNITS = 10**18
SAFE_NONCE_ABI = [
    {
        "inputs": [],
        "name": "nonce",
        "outputs": [{"type": "uint256", "name": ""}],
        "stateMutability": "view",
        "type": "function",
    }
]


def status_of(deposit) -> str:
    deposit.refresh_from_db()
    return deposit.status


def safe_nonce(chain, safe) -> int:
    return chain.w3.eth.contract(address=safe.address, abi=SAFE_NONCE_ABI).functions.nonce().call()


def safe_cancel(chain, safe) -> str:
    """A Safe transaction that mints nothing (what the Safe app's "reject" executes)."""
    tx_hash = safe.exec_call(chain.address, calldata(chain, "approve", chain.admin_address, 0))
    assert receipt_of(chain, tx_hash)["status"] == 1
    return tx_hash


def failed_deposit(paid_deposit, chain, settings, amount: int = 5_000) -> DepositRequest:
    """A real mint_failed deposit: its signed mint was sent only after the recipient was
    blacklisted (a crash between commit and send), so it reverted on chain and the proof
    finds every nonce mined and no mint."""
    deposit = paid_deposit(amount)
    wallet = deposit.wallet.address
    settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        mint_jobs_process(client_factory=mint_client)
    settings.CRASH_POINTS = set()
    chain.transact(chain.admin_key, chain.contract.functions.blacklist(wallet))
    mints_confirm(client_factory=mint_client)  # sends the committed bytes: they revert
    mints_confirm(client_factory=mint_client)
    chain.transact(chain.admin_key, chain.contract.functions.unblacklist(wallet))
    assert status_of(deposit) == "mint_failed"
    attempt = MintAttempt.objects.get(mint_transaction__deposit=deposit)
    assert attempt.status == "mined_reverted"
    return deposit


def refund_by_four_eyes(deposit, maker, checker) -> DualControlRequest:
    request = mint_refund_record(
        deposit_id=deposit.pk, evidence="M-Pesa reversal RX123", maker=maker
    )
    return dual_control_approve(request_id=request.pk, checker=checker)


# --- Routes: who and from where ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_super_admin_routes_a_pending_deposit_to_the_safe(minting, paid_deposit, superadmin):
    deposit = paid_deposit(5_000)
    mint_route_to_safe(deposit_id=deposit.pk, actor=superadmin, reason="key rotation")
    assert status_of(deposit) == "mint_requires_safe"
    last = DepositTransition.objects.filter(deposit=deposit).latest("at")
    assert (last.from_status, last.to_status, last.actor, last.note) == (
        "mint_pending",
        "mint_requires_safe",
        superadmin,
        "key rotation",
    )
    action = AdminAction.objects.get(action="mint.route_to_safe")
    assert (action.actor, action.target_id, action.reason) == (
        superadmin,
        str(deposit.pk),
        "key rotation",
    )


@pytest.mark.django_db
def test_compliance_cannot_change_a_deposits_lane(minting, paid_deposit, compliance):
    pending, safe_lane = paid_deposit(5_000), paid_deposit(10_000)
    with pytest.raises(PermissionRefused, match="super_admin"):
        mint_route_to_safe(deposit_id=pending.pk, actor=compliance, reason="incident")
    with pytest.raises(PermissionRefused, match="super_admin"):
        mint_route_to_worker(deposit_id=safe_lane.pk, actor=compliance, reason="incident")
    assert (status_of(pending), status_of(safe_lane)) == ("mint_pending", "mint_requires_safe")
    assert not AdminAction.objects.filter(action__startswith="mint.route").exists()


@pytest.mark.django_db
def test_a_route_needs_a_reason_and_a_routable_status(minting, paid_deposit, superadmin):
    pending, safe_lane = paid_deposit(5_000), paid_deposit(10_000)
    with pytest.raises(ServiceError, match="needs a reason"):
        mint_route_to_safe(deposit_id=pending.pk, actor=superadmin, reason="  ")
    with pytest.raises(ConflictError) as caught:
        mint_route_to_safe(deposit_id=safe_lane.pk, actor=superadmin, reason="again")
    assert str(caught.value) == (
        f"Deposit {safe_lane.pk} is mint_requires_safe; only a "
        "mint_pending or mint_failed deposit can be routed to the Safe."
    )
    with pytest.raises(ConflictError, match="only a mint_requires_safe deposit goes back"):
        mint_route_to_worker(deposit_id=pending.pk, actor=superadmin, reason="back")


@pytest.mark.django_db
def test_under_safe_only_no_deposit_goes_back_to_the_worker(
    minting, paid_deposit, superadmin, settings
):
    deposit = paid_deposit(10_000)
    settings.MINT_LANE = "safe_only"
    with pytest.raises(ConflictError, match="MINT_LANE is safe_only"):
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="signers away")
    assert status_of(deposit) == "mint_requires_safe"
    assert not AdminAction.objects.filter(action="mint.route_to_worker").exists()


@pytest.mark.django_db
def test_a_safe_lane_deposit_never_exported_goes_back_and_the_worker_mints_it(
    minting, paid_deposit, superadmin
):
    deposit = paid_deposit(10_000)
    mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="Safe signers away")
    assert status_of(deposit) == "mint_pending"
    assert mint_jobs_process(client_factory=mint_client).signed == 1
    mints_confirm(client_factory=mint_client)
    assert status_of(deposit) == "minted"
    assert minting.contract.functions.balanceOf(deposit.wallet.address).call() == 10_000 * UNITS


# --- Failed deposits need the pipeline's proof ------------------------------------------------


@pytest.mark.django_db
def test_a_failed_deposit_proven_dead_goes_to_the_safe(minting, paid_deposit, superadmin, settings):
    deposit = failed_deposit(paid_deposit, minting, settings)
    mint_route_to_safe(deposit_id=deposit.pk, actor=superadmin, reason="minter key rotated")
    assert status_of(deposit) == "mint_requires_safe"
    assert MintTransaction.objects.get(deposit=deposit).status == "failed"


@pytest.mark.django_db
def test_a_failed_deposit_whose_attempt_can_still_land_stays_failed(
    minting, paid_deposit, superadmin, settings
):
    deposit = failed_deposit(paid_deposit, minting, settings)
    attempt = MintAttempt.objects.get(mint_transaction__deposit=deposit)
    mined = minting.w3.eth.get_transaction_count(minting.minter_address)
    # Constructed: a replaced attempt at a nonce the chain has not reached yet.
    MintAttempt.objects.create(
        mint_transaction=attempt.mint_transaction,
        signer=attempt.signer,
        nonce=mined + 5,
        tx_hash="0x" + "cd" * 32,
        raw_tx="0x00",
        max_fee_per_gas=1,
        max_priority_fee_per_gas=1,
        gas_limit=150_000,
        status=MintAttempt.Status.REPLACED,
    )
    with pytest.raises(ConflictError) as caught:
        mint_route_to_safe(deposit_id=deposit.pk, actor=superadmin, reason="incident")
    assert str(caught.value) == (
        f"Deposit {deposit.pk} cannot leave mint_failed yet: an earlier transaction can still land."
    )
    assert status_of(deposit) == "mint_failed"


# --- After an export: the reference must be voided (mintForDeposit) -------------------------


@pytest.mark.django_db
def test_route_back_after_an_export_waits_until_the_safe_voids_the_reference(
    safe, minting, paid_deposit, compliance, superadmin
):
    deposit = paid_deposit(10_000)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    with pytest.raises(SafePayloadLive) as caught:
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    assert str(caught.value).startswith(f"{PAYLOAD_LIVE}: mine voidDepositRef")
    assert status_of(deposit) == "mint_requires_safe"

    void = safe_export_void_payload(deposit_id=deposit.pk)["call"]
    assert void["signature"] == "voidDepositRef(bytes32)"
    assert void["args"] == {"depositRef": "0x" + deposit_ref(deposit.pk).hex()}
    tx_hash = safe.exec_call(void["to"], bytes.fromhex(void["data"][2:]))
    assert receipt_of(minting, tx_hash)["status"] == 1
    assert minting.contract.functions.isDepositRefVoided(deposit_ref(deposit.pk)).call()

    mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    assert status_of(deposit) == "mint_pending"
    assert AdminAction.objects.filter(action="mint.route_to_worker").count() == 1


@pytest.mark.django_db
def test_a_refund_after_an_export_waits_until_the_minter_voids_the_reference(
    minting, paid_deposit, compliance, compliance_two
):
    deposit = paid_deposit(10_000)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    with pytest.raises(SafePayloadLive, match=PAYLOAD_LIVE):
        mint_refund_record(deposit_id=deposit.pk, evidence="bank reversal", maker=compliance)
    assert not DualControlRequest.objects.exists()

    minting.transact(
        minting.minter_key, minting.contract.functions.voidDepositRef(deposit_ref(deposit.pk))
    )
    request = mint_refund_record(deposit_id=deposit.pk, evidence="bank reversal", maker=compliance)
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=compliance)
    assert status_of(deposit) == "mint_requires_safe"

    dual_control_approve(request_id=request.pk, checker=compliance_two)
    assert status_of(deposit) == "refunded"
    last = DepositTransition.objects.filter(deposit=deposit).latest("at")
    assert (last.from_status, last.actor) == ("mint_requires_safe", compliance_two)
    assert AdminAction.objects.filter(
        action="mint_refund_record.approve", actor=compliance_two
    ).exists()


@pytest.mark.django_db
def test_the_checker_approval_sees_an_export_made_after_the_request(
    minting, paid_deposit, compliance, compliance_two
):
    deposit = paid_deposit(10_000)
    request = mint_refund_record(
        deposit_id=deposit.pk, evidence="refunded by bank", maker=compliance
    )
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance_two)
    with pytest.raises(SafePayloadLive, match=PAYLOAD_LIVE):
        dual_control_approve(request_id=request.pk, checker=compliance_two)
    request.refresh_from_db()
    assert (request.decision, status_of(deposit)) == ("pending", "mint_requires_safe")


@pytest.mark.django_db
def test_a_minted_reference_is_recorded_not_routed(
    safe, minting, paid_deposit, compliance, superadmin
):
    deposit = paid_deposit(10_000)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    tx_hash = safe_mint(safe, minting, deposit)
    with pytest.raises(SafePayloadLive, match="reference is already minted on chain"):
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    assert safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance) == "minted"


@pytest.mark.django_db
def test_a_safe_mint_waiting_for_confirmations_is_not_routed_back(
    safe, minting, paid_deposit, compliance, superadmin, settings
):
    settings.MINT_CONFIRMATIONS = 3
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit)
    assert (
        safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance)
        == "awaiting_confirmations"
    )
    with pytest.raises(ConflictError, match="is waiting for confirmations"):
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    with pytest.raises(ConflictError, match="is waiting for confirmations"):
        mint_refund_record(deposit_id=deposit.pk, evidence="refund", maker=compliance)
    assert status_of(deposit) == "mint_requires_safe"


# --- After an export without deposit references: the Safe nonce must be consumed -------------


@pytest.mark.django_db
def test_route_back_without_references_needs_two_people_to_record_the_consumed_nonce(
    safe, minting, paid_deposit, compliance, compliance_two, superadmin, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit(10_000)
    nonce = safe_nonce(minting, safe)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance, safe_nonce=nonce)
    with pytest.raises(SafePayloadLive) as caught:
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    assert str(caught.value).startswith(f"{PAYLOAD_LIVE}: two people must first record")

    cancel = safe_cancel(minting, safe)
    request = safe_nonce_consumed_record(
        deposit_id=deposit.pk,
        tx_hash=cancel,
        evidence="proposal rejected in the Safe app",
        maker=compliance,
    )
    assert request.params["safe_nonce"] == nonce
    with pytest.raises(SafePayloadLive):  # one person is not enough
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    dual_control_approve(request_id=request.pk, checker=compliance_two)

    mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    assert status_of(deposit) == "mint_pending"


@pytest.mark.django_db
def test_a_consumed_nonce_record_refuses_a_mint_a_direct_tx_and_a_lower_nonce(
    safe, minting, paid_deposit, compliance, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit, other = paid_deposit(10_000), paid_deposit(11_000)
    minted = safe_mint(safe, minting, other, ref=False)
    early = safe_cancel(minting, safe)
    safe_batch_file(
        deposit_ids=[deposit.pk], actor=compliance, safe_nonce=safe_nonce(minting, safe)
    )

    with pytest.raises(SafeRecordRefused) as caught:
        safe_nonce_consumed_record(
            deposit_id=deposit.pk, tx_hash=minted, evidence="x", maker=compliance
        )
    assert str(caught.value).startswith(f"Transaction {minted} minted NTZS (log ")
    direct = minting.transact(
        minting.admin_key, minting.contract.functions.approve(minting.minter_address, 0)
    )
    direct_hash = "0x" + direct["transactionHash"].hex()
    with pytest.raises(SafeRecordRefused, match="has no ExecutionSuccess event"):
        safe_nonce_consumed_record(
            deposit_id=deposit.pk, tx_hash=direct_hash, evidence="x", maker=compliance
        )
    with pytest.raises(ConflictError, match="below the exported proposal's nonce"):
        safe_nonce_consumed_record(
            deposit_id=deposit.pk, tx_hash=early, evidence="x", maker=compliance
        )
    assert not DualControlRequest.objects.exists()


@pytest.mark.django_db
def test_an_unrecorded_safe_mint_blocks_the_route_back_even_after_a_later_nonce(
    safe, minting, paid_deposit, compliance, compliance_two, superadmin, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit(10_000)
    safe_batch_file(
        deposit_ids=[deposit.pk], actor=compliance, safe_nonce=safe_nonce(minting, safe)
    )
    minted = safe_mint(safe, minting, deposit, ref=False)  # the exported proposal executed
    request = safe_nonce_consumed_record(
        deposit_id=deposit.pk,
        tx_hash=safe_cancel(minting, safe),
        evidence="a later Safe transaction",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)

    with pytest.raises(SafePayloadLive) as caught:
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    assert str(caught.value).startswith(
        f"An unrecorded mint of 10,000 TZS to this deposit's wallet is on chain ({minted}#"
    )
    assert status_of(deposit) == "mint_requires_safe"
    assert safe_mint_record(deposit_id=deposit.pk, tx_hash=minted, actor=compliance) == "minted"


# --- Refunds ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pending_deposit_is_refunded_by_two_people(
    minting, paid_deposit, compliance, superadmin, amina
):
    deposit = paid_deposit(5_000)
    with pytest.raises(PermissionRefused):
        mint_refund_record(deposit_id=deposit.pk, evidence="refund", maker=amina)
    with pytest.raises(ServiceError, match="Describe the refund"):
        mint_refund_record(deposit_id=deposit.pk, evidence=" ", maker=compliance)
    refund_by_four_eyes(deposit, compliance, superadmin)
    assert status_of(deposit) == "refunded"
    assert mint_jobs_process(client_factory=mint_client).signed == 0


@pytest.mark.django_db
def test_a_minted_deposit_is_not_refunded_here(minting, paid_deposit, compliance):
    deposit = paid_deposit(5_000)
    mint_jobs_process(client_factory=mint_client)
    mints_confirm(client_factory=mint_client)
    with pytest.raises(ConflictError, match="minting records a refund only for"):
        mint_refund_record(deposit_id=deposit.pk, evidence="refund", maker=compliance)
    assert status_of(deposit) == "minted"


class TestRefundOfAProvenFailedMint:
    @pytest.mark.django_db
    def test_a_failed_deposit_is_refunded_once_proven_dead(
        self, minting, paid_deposit, compliance, compliance_two, settings
    ):
        deposit = failed_deposit(paid_deposit, minting, settings)
        refund_by_four_eyes(deposit, compliance, compliance_two)
        assert status_of(deposit) == "refunded"
        assert DailyIssuance.objects.get().reserved_tzs == 0


# --- Commands ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_lane_and_refund_commands(minting, paid_deposit, superadmin, compliance, capsys):
    deposit = paid_deposit(5_000)
    call_command(
        "mint_route_to_safe", str(deposit.pk), "--reason", "incident", "--actor", superadmin.email
    )
    assert status_of(deposit) == "mint_requires_safe"
    call_command(
        "mint_route_to_worker", str(deposit.pk), "--reason", "resolved", "--actor", superadmin.email
    )
    assert status_of(deposit) == "mint_pending"
    with pytest.raises(CommandError, match="super_admin"):
        call_command(
            "mint_route_to_safe", str(deposit.pk), "--reason", "x", "--actor", compliance.email
        )

    call_command(
        "mint_refund_record",
        str(deposit.pk),
        "--evidence",
        "bank reversal",
        "--actor",
        compliance.email,
    )
    request = DualControlRequest.objects.get(action="mint_refund_record")
    assert f"dual_control_approve {request.pk}" in capsys.readouterr().out
    call_command("dual_control_approve", str(request.pk), "--actor", superadmin.email)
    assert status_of(deposit) == "refunded"


@pytest.mark.django_db
def test_after_a_key_rotation_an_old_keys_failed_mint_is_proven_dead_by_the_old_keys_nonce(
    minting, paid_deposit, superadmin, settings
):
    """The proof reads each attempt's own signer: a fresh key's nonce (0) says nothing about
    the old key's mined transactions, so the retry, route and refund are not blocked."""
    deposit = failed_deposit(paid_deposit, minting, settings)
    settings.MINTER_PRIVATE_KEY = "0x" + Account.create().key.hex()  # rotated: a fresh key
    assert mint_retry(client=mint_client(), deposit_id=deposit.pk, actor=superadmin) == "queued"
    assert status_of(deposit) == "mint_pending"
