"""Lane changes and refunds of paid, unminted deposits (DESIGN §5, §7.8, §7.9), with the one
money-safety rule: after a Safe export, no payment may be left unbacked.

A route back to the worker lane or a refund is refused with "A Safe payload for this deposit
can still be executed" while an exported payload can still mint: a ``mintForDeposit`` export
is dead once ``voidDepositRef(ref)`` is mined (``safe_export_void_payload`` gives that call);
a plain ``mint`` export is dead once two people have recorded an executed Safe transaction
that consumed its Safe nonce and minted nothing (``safe_nonce_consumed_record``). A failed
deposit also needs the minting pipeline's proof that no earlier attempt can still land.

Chain reads run before the database transaction; inside it, the deposit row is locked and
what was proven is checked to be still what the database says (status, attempts, exports).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from eth_utils import to_checksum_address
from web3.exceptions import Web3Exception

from core.clock import now
from core.exceptions import ConflictError, ServiceError
from core.models import DualControlRequest, MintLane, RuntimeSetting
from core.money import tzs_to_units
from core.roles import SUPER_ADMIN, require_not_beneficiary, require_role
from core.selectors import mint_lane_effective
from core.services import (
    DualControlAction,
    admin_action_record,
    dual_control_action_register,
    dual_control_request_make,
    runtime_setting_set,
    task_enqueue_on_commit,
)
from deposits.models import DepositRequest
from deposits.selectors import deposit_get, deposit_owner_id
from deposits.services.transitions import (
    deposit_refund,
    deposit_route_to_safe,
    deposit_route_to_worker,
)
from minting.chain import (
    TRANSFER_TOPIC,
    ZERO_ADDRESS,
    ChainError,
    NtzsClient,
    hex_str,
    receipt_token_logs,
)
from minting.contract_artifact import deposit_ref
from minting.models import MintAttempt, MintTransaction, SafeBatchExport
from minting.services.deposit_refs import MINT_FOR_DEPOSIT, export_method, export_methods
from minting.services.recording import Verdict, logs_from_block, mint_proof
from minting.services.safe import (  # the nonce-record rule lives there: the export uses it
    NONCE_RECORD,
    OPERATOR_ROLES,
    ChainReadRefused,
    SafeRecordRefused,
    SafeRefused,
    approved_nonce_records,
    batch_file,
    chain_client,
    claim_holder,
    contract_call,
    mint_with_ref,
    nonce_export_covered,
    require_operator,
    safe_address,
    safe_execution_require,
    token_calldata,
    tx_hash_normalise,
)

logger = logging.getLogger("minting")
S = DepositRequest.Status
MT = MintTransaction.Status
LIVE = (MintAttempt.Status.SIGNED, MintAttempt.Status.SENT)
REFUNDABLE = (S.MINT_PENDING, S.MINT_FAILED, S.MINT_REQUIRES_SAFE)
PAYLOAD_LIVE = "A Safe payload for this deposit can still be executed"
REFUND_RECORD = "mint_refund_record"
MINT_LANE_SET = "mint_lane_set"
# What a MINT_LANE switch may ask for: one of the lanes, or no override (the environment's).
MINT_LANE_ENVIRONMENT = "environment"
MINT_LANE_CHOICES = (*MintLane.values, MINT_LANE_ENVIRONMENT)


class SafePayloadLive(ConflictError):
    """An exported Safe payload for the deposit could still mint it."""


# --- What the chain must prove before a deposit leaves its lane ------------------------------


@dataclass(frozen=True)
class LaneProof:
    """What was proven on chain, and the database facts it was proven for."""

    status: str
    export_ids: frozenset[uuid.UUID]
    attempt_ids: frozenset[uuid.UUID]


def _ref_state(client: NtzsClient, ref: bytes) -> tuple[bool, bool]:
    """(minted, voided) at MINT_CONFIRMATIONS depth: a void is trusted once it is as deep as
    a mint would have to be."""
    functions = client.contract.functions
    try:
        depth = max(settings.MINT_CONFIRMATIONS, 1) - 1
        block = max(client.confirmation_head() - depth, 0)  # safe head under tag "safe"
        minted = functions.isDepositMinted(ref).call(block_identifier=block)
        voided = functions.isDepositRefVoided(ref).call(block_identifier=block)
    except (ChainError, OSError, ValueError, Web3Exception) as exc:
        raise ChainReadRefused(
            f"The deposit reference could not be read on chain ({type(exc).__name__}); try again."
        ) from None
    return bool(minted), bool(voided)


def _unclaimed_mints_to_wallet(client: NtzsClient, deposit: DepositRequest) -> list[str]:
    """Mint logs of this deposit's exact amount to its wallet that nothing has claimed.

    On a token without deposit references this read is the whole guarantee against a second
    mint, so it starts at a recorded head (before the deposit's first attempt or export;
    else the deploy block) and is all or nothing: a failed read refuses, "try again"."""
    wallet_topic = hex_str(
        bytes(12) + bytes.fromhex(to_checksum_address(deposit.wallet.address)[2:])
    )
    try:
        logs = client.logs_read(
            topics=[hex_str(TRANSFER_TOPIC), hex_str(bytes(32)), wallet_topic],
            from_block=logs_from_block(deposit.pk, contract_address=client.address),
        )
    except (ChainError, OSError, ValueError, Web3Exception) as exc:
        raise ChainReadRefused(
            f"The token's mint logs could not be read ({exc}); try again."
        ) from None
    units = tzs_to_units(deposit.amount_tzs)
    found = []
    for log in logs:
        tx_hash = hex_str(log["transactionHash"])
        if (
            int.from_bytes(bytes(log["data"])[:32], "big") == units
            and claim_holder(tx_hash=tx_hash, log_index=log["logIndex"]) is None
        ):
            found.append(f"{tx_hash}#{log['logIndex']}")
    return found


def safe_exports_refusal(client: NtzsClient, deposit: DepositRequest) -> str:
    """Why the deposit may not leave the Safe lane: an exported Safe payload could still mint
    it, or a mint of its amount to its wallet is on chain unrecorded ("" when neither)."""
    refusal = safe_exports_live_refusal(client, deposit)
    if refusal or not _plain_exports(deposit):
        return refusal
    unclaimed = _unclaimed_mints_to_wallet(client, deposit)
    if unclaimed:
        return (
            f"An unrecorded mint of {deposit.amount_tzs:,} TZS to this deposit's wallet "
            f"is on chain ({unclaimed[0]}); record it with safe_mint_record first."
        )
    return ""


def _plain_exports(deposit: DepositRequest) -> list[SafeBatchExport]:
    return [
        export
        for export in deposit.safe_exports.all()
        if export_method(export, deposit.pk) != MINT_FOR_DEPOSIT
    ]


def safe_exports_live_refusal(client: NtzsClient, deposit: DepositRequest) -> str:
    """Why an exported Safe payload of this deposit could still mint it ("" when none can):
    a ``mintForDeposit`` payload until its reference is voided, a plain ``mint`` payload until
    two people recorded its Safe nonce consumed."""
    exports = list(deposit.safe_exports.order_by("at"))
    if not exports:
        return ""
    methods = {export.pk: export_method(export, deposit.pk) for export in exports}
    if any(method == MINT_FOR_DEPOSIT for method in methods.values()):
        minted, voided = _ref_state(client, deposit_ref(deposit.pk))
        if minted:
            return (
                f"Deposit {deposit.pk}'s reference is already minted on chain; record the "
                "Safe transaction with safe_mint_record instead."
            )
        if not voided:
            return (
                f"{PAYLOAD_LIVE}: mine voidDepositRef for its reference first "
                "(safe_export_void_payload gives the call) and wait for "
                f"{settings.MINT_CONFIRMATIONS} confirmation(s)."
            )
    plain = [export for export in exports if methods[export.pk] != MINT_FOR_DEPOSIT]
    if plain:
        records = approved_nonce_records(deposit.pk)
        if not all(nonce_export_covered(export, records) for export in plain):
            return (
                f"{PAYLOAD_LIVE}: two people must first record an executed Safe transaction "
                "that consumed the exported Safe nonce and minted nothing "
                f"({NONCE_RECORD})."
            )
    return ""


def _attempt_ids(mint: MintTransaction | None) -> frozenset[uuid.UUID]:
    if mint is None:
        return frozenset()
    return frozenset(mint.attempts.values_list("pk", flat=True))


def _export_ids(deposit_id: uuid.UUID) -> frozenset[uuid.UUID]:
    return frozenset(
        SafeBatchExport.objects.filter(deposits=deposit_id).values_list("pk", flat=True)
    )


def _lane_proof(deposit: DepositRequest, *, check_exports: bool) -> LaneProof:
    """The chain checks for a deposit leaving its lane (no database lock is held here)."""
    mint = MintTransaction.objects.filter(deposit=deposit).first()
    if mint is not None and mint.status == MT.AWAITING_CONFIRMATIONS:
        raise ConflictError(
            f"A Safe mint of deposit {deposit.pk} ({mint.tx_hash}) is waiting "
            "for confirmations; it will be recorded, not moved."
        )
    if mint is not None and mint.attempts.filter(status__in=LIVE).exists():
        raise ConflictError(
            f"Deposit {deposit.pk} has a mint transaction in flight; wait for "
            "it to be confirmed or proven dead."
        )
    needs_chain = deposit.status == S.MINT_FAILED or (check_exports and _export_ids(deposit.pk))
    if needs_chain:
        client = chain_client()
        try:
            if deposit.status == S.MINT_FAILED and mint is not None:
                _failure_proven(client, mint)
            if check_exports:
                refusal = safe_exports_refusal(client, deposit)
                if refusal:
                    raise SafePayloadLive(refusal)
        except (ChainError, OSError, Web3Exception) as exc:
            raise ChainReadRefused(f"The chain could not be read ({exc}); try again.") from None
    return LaneProof(
        status=deposit.status, export_ids=_export_ids(deposit.pk), attempt_ids=_attempt_ids(mint)
    )


def _failure_proven(client: NtzsClient, mint: MintTransaction) -> None:
    """The pipeline's failure proof, read the way the mint was signed (its reference is
    checked only when it was signed with one)."""
    proof = mint_proof(client, mint)
    if proof.verdict is Verdict.MINTED:
        raise ConflictError(
            f"An earlier attempt minted deposit {mint.deposit_id} "
            f"({proof.attempt.tx_hash}); confirm_mints will record it."
        )
    if proof.verdict is Verdict.REF_MINTED:
        raise ConflictError(
            f"Deposit {mint.deposit_id}'s reference is already minted on chain; "
            "confirm_mints will record it."
        )
    if proof.verdict is not Verdict.DEAD:
        raise ConflictError(
            f"Deposit {mint.deposit_id} cannot leave mint_failed yet: {proof.reason}."
        )


def _proof_still_holds(deposit: DepositRequest, proof: LaneProof) -> MintTransaction | None:
    """Inside the transaction, with the deposit row locked: nothing the proof relied on has
    changed (a new export, a new attempt, another status)."""
    if deposit.status != proof.status:
        raise ConflictError(
            f"Deposit {deposit.pk} changed to {deposit.status} meanwhile; look at it again."
        )
    if _export_ids(deposit.pk) != proof.export_ids:
        raise SafePayloadLive(f"{PAYLOAD_LIVE}: it was exported again meanwhile.")
    mint = MintTransaction.objects.select_for_update().filter(deposit=deposit).first()
    if _attempt_ids(mint) != proof.attempt_ids or (
        mint is not None and mint.status == MT.AWAITING_CONFIRMATIONS
    ):
        raise ConflictError(
            f"Deposit {deposit.pk}'s mint transaction changed meanwhile; look at it again."
        )
    return mint


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(f"{what} needs a reason.")
    return reason[:1000]


# --- Route to the Safe lane and back ----------------------------------------------------------


def mint_route_to_safe(*, deposit_id, actor, reason: str) -> None:
    """``mint_pending | mint_failed`` → ``mint_requires_safe`` (super admin, with a reason);
    a failed deposit only once the pipeline proves no earlier attempt can still land."""
    require_operator(actor, "route deposits to the Safe", roles=(SUPER_ADMIN,))
    reason = _reason(reason, "Routing a deposit to the Safe")
    deposit = deposit_get(deposit_id=deposit_id)
    require_not_beneficiary(actor, deposit.user_id, doing=f"route deposit {deposit.pk}")
    if deposit.status not in (S.MINT_PENDING, S.MINT_FAILED):
        raise ConflictError(
            f"Deposit {deposit.pk} is {deposit.status}; only a mint_pending or "
            "mint_failed deposit can be routed to the Safe."
        )
    proof = _lane_proof(deposit, check_exports=False)
    _mint_route_to_safe_write(deposit_id=deposit.pk, proof=proof, actor=actor, reason=reason)


@transaction.atomic(durable=True)
def _mint_route_to_safe_write(
    *, deposit_id: uuid.UUID, proof: LaneProof, actor, reason: str
) -> None:
    deposit = deposit_get(deposit_id=deposit_id, for_update=True)
    mint = _proof_still_holds(deposit, proof)
    deposit_route_to_safe(deposit_id=deposit.pk, actor=actor, reason=reason)
    if mint is not None and mint.status != MT.FAILED:
        # The worker lane's mint is abandoned (nothing reserved, nothing in flight); a Safe
        # record, or a route back, takes it from here.
        MintTransaction.objects.filter(pk=mint.pk).update(
            status=MT.FAILED, error=f"routed to the Safe lane: {reason}"[:1000], updated_at=now()
        )
    admin_action_record(
        actor=actor,
        action="mint.route_to_safe",
        target_type="deposit",
        target_id=deposit.pk,
        params={"from": proof.status},
        reason=reason,
    )


def mint_route_to_worker(*, deposit_id, actor, reason: str) -> None:
    """``mint_requires_safe`` → ``mint_pending`` (super admin, with a reason); refused while an
    exported Safe payload can still mint the deposit."""
    require_operator(actor, "route deposits back to the worker lane", roles=(SUPER_ADMIN,))
    reason = _reason(reason, "Routing a deposit back to the worker lane")
    deposit = deposit_get(deposit_id=deposit_id)
    require_not_beneficiary(actor, deposit.user_id, doing=f"route deposit {deposit.pk}")
    if deposit.status != S.MINT_REQUIRES_SAFE:
        raise ConflictError(
            f"Deposit {deposit.pk} is {deposit.status}; only a "
            "mint_requires_safe deposit goes back to the worker lane."
        )
    if mint_lane_effective().safe_only:
        # The next pipeline run would route it straight back to the Safe lane.
        raise ConflictError(
            "MINT_LANE is safe_only, so every deposit mints through the Safe: switch the lane "
            "back to auto (Backstage → Minting, four eyes) before routing a deposit to the "
            "worker."
        )
    proof = _lane_proof(deposit, check_exports=True)
    _mint_route_to_worker_write(deposit_id=deposit.pk, proof=proof, actor=actor, reason=reason)


@transaction.atomic(durable=True)
def _mint_route_to_worker_write(
    *, deposit_id: uuid.UUID, proof: LaneProof, actor, reason: str
) -> None:
    deposit = deposit_get(deposit_id=deposit_id, for_update=True)
    mint = _proof_still_holds(deposit, proof)
    deposit_route_to_worker(deposit_id=deposit.pk, actor=actor, reason=reason)
    if mint is not None:
        MintTransaction.objects.filter(pk=mint.pk).update(
            status=MT.PENDING, error="", updated_at=now()
        )
    admin_action_record(
        actor=actor,
        action="mint.route_to_worker",
        target_type="deposit",
        target_id=deposit.pk,
        params={"exports": len(proof.export_ids)},
        reason=reason,
    )


# --- Refund record (four eyes) ----------------------------------------------------------------


def _refund_validate(params: dict, target_id: str) -> None:
    deposit = deposit_get(deposit_id=target_id)
    if deposit.status not in REFUNDABLE:
        raise ConflictError(
            f"Deposit {deposit.pk} is {deposit.status}; minting records a "
            "refund only for mint_pending, mint_failed or mint_requires_safe "
            "deposits."
        )


def _refund_prepare(request: DualControlRequest) -> dict:
    """At approval, before the transaction: the failure proof and the export check."""
    deposit = deposit_get(deposit_id=request.target_id)
    _refund_validate(request.params, request.target_id)
    return {"proof": _lane_proof(deposit, check_exports=True)}


def _refund_apply(request: DualControlRequest, checker, context: dict) -> None:
    proof: LaneProof = context["proof"]
    deposit = deposit_get(deposit_id=request.target_id, for_update=True)
    _proof_still_holds(deposit, proof)
    deposit_refund(
        deposit_id=deposit.pk,
        allowed=(proof.status,),
        actor=checker,
        note=f"off-system refund recorded: {request.evidence}"[:1000],
    )


def mint_refund_record(*, deposit_id, evidence: str, maker) -> DualControlRequest:
    """The maker's half of a refund of a paid, unminted deposit; a different person approves
    with ``dual_control_approve``, which checks the chain again before refunding."""
    if not (evidence or "").strip():
        raise ServiceError("Describe the refund (how, when, reference) for the checker.")
    require_operator(maker, "record refunds")
    deposit = deposit_get(deposit_id=deposit_id)
    _refund_validate({}, str(deposit.pk))
    _lane_proof(deposit, check_exports=True)  # refuse early; the checker's approval re-checks
    return dual_control_request_make(
        action=REFUND_RECORD,
        target_id=deposit.pk,
        params={},
        evidence=evidence.strip(),
        maker=maker,
    )


# --- Killing an exported payload ----------------------------------------------------------------


def safe_export_void_payload(*, deposit_id) -> dict:
    """The ``voidDepositRef(ref)`` call (for the Safe, or the minter key) that makes every
    exported ``mintForDeposit`` payload of this deposit unexecutable, with a batch file."""
    deposit = deposit_get(deposit_id=deposit_id)
    # What was exported decides whether there is a reference to void; with no export, what
    # an export would use.
    methods = export_methods(deposit.pk)
    uses_ref = MINT_FOR_DEPOSIT in methods if methods else mint_with_ref(chain_client)
    if not uses_ref:
        raise SafeRefused(
            "The token has no deposit references, so there is nothing to void; "
            f"record the consumed Safe nonce instead ({NONCE_RECORD})."
        )
    token = settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA
    ref = hex_str(deposit_ref(deposit.pk))
    data = token_calldata("voidDepositRef", [deposit_ref(deposit.pk)])
    call = contract_call(
        token=token, method="voidDepositRef", values=[ref], data=data, deposit_id=deposit.pk
    )
    return {
        "call": call,
        "batch": batch_file(
            calls=[call],
            name="nTZS void deposit reference",
            description=f"Void the deposit reference of deposit {deposit.pk} so that no exported "
            "Safe mint payload for it can execute.",
        ),
    }


def safe_void_payload_export(*, deposit_id, actor) -> dict:
    """``safe_export_void_payload`` given out to a person: an operator of the Safe lane who
    is not the deposit's owner, audited (the call can only stop a mint, but who took it and
    when belongs in the record)."""
    require_operator(actor, "export the call that voids a Safe payload")
    require_not_beneficiary(
        actor, deposit_owner_id(deposit_id), doing=f"void the Safe payload of {deposit_id}"
    )
    void = safe_export_void_payload(deposit_id=deposit_id)
    admin_action_record(
        actor=actor,
        action="safe.void_payload",
        target_type="deposit",
        target_id=str(deposit_id),
        params={"call": void["call"]["text"]},
    )
    return void


@dataclass(frozen=True)
class NonceConsumed:
    tx_hash: str
    safe_nonce: int


def safe_nonce_consumed_proof(client: NtzsClient, *, tx_hash: str) -> NonceConsumed:
    """An executed transaction of SAFE_ADDRESS (ExecutionSuccess) with no NTZS mint log, and
    the Safe nonce it used."""
    receipt = client.receipt(tx_hash)
    if receipt is None:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} was not found on chain "
            f"{settings.CHAIN_ID}; check the hash or wait until it is mined."
        )
    if receipt["status"] != 1:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} reverted on chain; it consumed no Safe nonce."
        )
    execution = safe_execution_require(receipt, tx_hash=tx_hash, safe=safe_address())
    mints = [
        log
        for log in receipt_token_logs(receipt, token_address=client.address)
        if getattr(log, "from_address", None) == ZERO_ADDRESS
    ]
    if mints:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} minted NTZS (log {mints[0].log_index}); "
            "record it with safe_mint_record, it is not a cancellation."
        )
    if not execution.nonces:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} does not show which Safe nonce it used "
            "(no SafeMultiSigTransaction event of our Safe)."
        )
    return NonceConsumed(tx_hash=tx_hash, safe_nonce=max(execution.nonces))


def _required_nonce(deposit_id: uuid.UUID, proposal_nonce: int | None) -> int:
    exports = [
        export
        for export in SafeBatchExport.objects.filter(deposits=deposit_id)
        if export_method(export, deposit_id) != MINT_FOR_DEPOSIT
    ]
    if not exports:
        raise ConflictError(
            f"Deposit {deposit_id} has no exported plain-mint Safe payload; "
            "there is no Safe nonce to record."
        )
    if any(export.safe_nonce is None for export in exports) and proposal_nonce is None:
        raise ServiceError(
            "An export of this deposit did not record its Safe nonce; give the "
            "nonce of the proposal as shown in the Safe app."
        )
    known = [export.safe_nonce for export in exports if export.safe_nonce is not None]
    return max(known + ([proposal_nonce] if proposal_nonce is not None else []))


def _nonce_record_validate(params: dict, target_id: str) -> None:
    deposit = deposit_get(deposit_id=target_id)
    required = _required_nonce(deposit.pk, params.get("proposal_nonce"))
    if params.get("safe_nonce") is None or params["safe_nonce"] < required:
        raise ConflictError(
            f"Transaction {params.get('tx_hash')} used Safe nonce "
            f"{params.get('safe_nonce')}, below the exported proposal's nonce "
            f"{required}; it does not consume it."
        )


def _nonce_record_prepare(request: DualControlRequest) -> dict:
    client = chain_client()
    try:
        proof = safe_nonce_consumed_proof(client, tx_hash=request.params["tx_hash"])
    except ChainError as exc:
        raise ChainReadRefused(f"The chain could not be read ({exc}); try again.") from None
    if proof.safe_nonce != request.params["safe_nonce"]:
        raise ConflictError(
            f"Transaction {proof.tx_hash} now shows Safe nonce "
            f"{proof.safe_nonce}, not {request.params['safe_nonce']}; refused."
        )
    return {}


def _nonce_record_apply(request: DualControlRequest, checker, context: dict) -> None:
    _nonce_record_validate(request.params, request.target_id)


def safe_nonce_consumed_record(
    *, deposit_id, tx_hash: str, evidence: str, maker, proposal_nonce: int | None = None
) -> DualControlRequest:
    """The maker's half: an executed Safe transaction (ExecutionSuccess of SAFE_ADDRESS, no
    NTZS mint log) whose Safe nonce is at or above the exported proposal's. Once a different
    person approves, the plain-mint exports it covers can no longer execute."""
    if not (evidence or "").strip():
        raise ServiceError("Describe how the Safe proposal was cancelled, for the checker.")
    require_operator(maker, "record a consumed Safe nonce")
    tx_hash = tx_hash_normalise(tx_hash)
    deposit = deposit_get(deposit_id=deposit_id)
    _required_nonce(deposit.pk, proposal_nonce)
    client = chain_client()
    try:
        proof = safe_nonce_consumed_proof(client, tx_hash=tx_hash)
    except ChainError as exc:
        raise ChainReadRefused(f"The chain could not be read ({exc}); try again.") from None
    return dual_control_request_make(
        action=NONCE_RECORD,
        target_id=deposit.pk,
        evidence=evidence.strip(),
        maker=maker,
        params={
            "tx_hash": tx_hash,
            "safe_nonce": proof.safe_nonce,
            "proposal_nonce": proposal_nonce,
        },
    )


# --- MINT_LANE: route everything to the Safe (four eyes) -------------------------------------


def _mint_lane_validate(params: dict, target_id: str) -> None:
    """At the request and again at approval (the lane may have been switched meanwhile)."""
    lane = params.get("lane")
    if lane not in MINT_LANE_CHOICES:
        raise ServiceError(
            f"MINT_LANE can be switched to auto or safe_only, or back to the environment's "
            f"default ({MINT_LANE_ENVIRONMENT}); {lane!r} is none of them."
        )
    state = mint_lane_effective()
    if lane == MINT_LANE_ENVIRONMENT and not state.overridden:
        raise ConflictError(
            f"MINT_LANE has no runtime override to clear; it already follows the environment "
            f"({state.environment_lane})."
        )
    if lane != MINT_LANE_ENVIRONMENT and state.overridden and state.lane == lane:
        raise ConflictError(f"MINT_LANE is already overridden to {lane}; nothing would change.")


def _mint_lane_prepare(request: DualControlRequest) -> dict:
    """What the checker reads before approving: the lane now and what the switch would move
    (no chain call)."""
    state = mint_lane_effective()
    return {
        "lane now": state.lane,
        "set by": "override" if state.overridden else "environment (MINT_LANE)",
        "environment default": state.environment_lane,
        "waiting in mint_pending (not held)": DepositRequest.objects.filter(
            status=S.MINT_PENDING, hold_reason=""
        ).count(),
    }


def _mint_lane_apply(request: DualControlRequest, checker, context: dict) -> None:
    lane = request.params["lane"]
    previous, value = runtime_setting_set(
        key=RuntimeSetting.Key.MINT_LANE,
        value="" if lane == MINT_LANE_ENVIRONMENT else lane,
        actor=checker,
        request=request,
    )
    effective = mint_lane_effective().lane
    admin_action_record(
        actor=checker,
        action="mint_lane.set",
        target_type="runtime_setting",
        target_id=RuntimeSetting.Key.MINT_LANE,
        params={
            "request_id": str(request.pk),
            "maker": str(request.maker_id),
            "from": previous or MINT_LANE_ENVIRONMENT,
            "to": value or MINT_LANE_ENVIRONMENT,
            "effective": effective,
        },
        outcome="applied",
        reason=request.evidence,
    )
    logger.warning(
        "MINT_LANE override %s -> %s (effective %s) request=%s",
        previous or MINT_LANE_ENVIRONMENT,
        value or MINT_LANE_ENVIRONMENT,
        effective,
        request.pk,
    )
    if effective == MintLane.SAFE_ONLY:
        # Route what waits now rather than at the next beat (the run itself is the rule).
        task_enqueue_on_commit("minting.tasks.process_mint_jobs")


def mint_lane_request(*, lane: str, actor, reason: str) -> DualControlRequest:
    """A super admin's request to switch MINT_LANE at runtime (``auto``, ``safe_only``, or
    ``environment`` to clear the override); a different super admin approves it with
    ``dual_control_approve``, which applies it at once. With ``safe_only``, new confirmations
    go to the Safe lane and the next pipeline run routes the deposits waiting in
    ``mint_pending``; back to ``auto``, new confirmations go to the worker again (deposits
    already in the Safe lane stay: routing one back is ``mint_route_to_worker``)."""
    require_role(actor, SUPER_ADMIN, doing="switch MINT_LANE")
    reason = _reason(reason, "Switching MINT_LANE")
    return dual_control_request_make(
        action=MINT_LANE_SET,
        target_id=RuntimeSetting.Key.MINT_LANE,
        params={"lane": (lane or "").strip().lower()},
        evidence=reason,
        maker=actor,
    )


def register_dual_control_actions() -> None:
    for action in (
        DualControlAction(
            name=MINT_LANE_SET,
            target_type="runtime_setting",
            roles=(SUPER_ADMIN,),
            apply=_mint_lane_apply,
            validate=_mint_lane_validate,
            prepare=_mint_lane_prepare,
        ),
        DualControlAction(
            name=REFUND_RECORD,
            target_type="deposit",
            roles=OPERATOR_ROLES,
            apply=_refund_apply,
            validate=_refund_validate,
            prepare=_refund_prepare,
            beneficiary=deposit_owner_id,
        ),
        DualControlAction(
            name=NONCE_RECORD,
            target_type="deposit",
            roles=OPERATOR_ROLES,
            apply=_nonce_record_apply,
            validate=_nonce_record_validate,
            prepare=_nonce_record_prepare,
            beneficiary=deposit_owner_id,
        ),
    ):
        dual_control_action_register(action)
