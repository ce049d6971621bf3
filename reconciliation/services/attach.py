"""Attaching an indexed mint log to the deposit it minted (DESIGN §8, §9; issue 14 point 3):
a mint on chain for a ``mint_pending``, ``mint_failed`` or open ``mint_requires_safe``
deposit that nothing recorded (a mint made by hand with another key, a Safe mint the
matching could not prove by itself). It makes the deposit ``minted``, so it is a four-eyes
action (``reconciliation.attach_log``): a super admin asks with evidence, another super admin
approves in the queue, and the deposit's owner is neither.

The maker's request writes only the request and its audit row; the chain is read then (a
wrong log is refused at once) and again by the checker's ``prepare``, outside any
transaction. The approval records the mint through the minting recording path
(``recording.record_minted``: the deposit compare-and-set, the ``MintLogClaim``, the mint
transaction and the day's issuance) with the checker as the transition's actor and an
``AdminAction``. The checks are those of DESIGN §7.9 on the receipt: status 1, the token's
``Transfer`` from zero at that log index to the deposit's wallet for exactly the deposit's
amount in base units, not followed by another deposit's ``DepositMinted``, unclaimed, and at
least ``MINT_CONFIRMATIONS`` deep."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from eth_utils import to_checksum_address

from core.exceptions import ConflictError, ServiceError
from core.models import DualControlRequest
from core.money import tzs_to_units, units_format
from core.roles import SUPER_ADMIN, require_role
from core.services import (
    DualControlAction,
    admin_action_record,
    dual_control_action_register,
    dual_control_request_make,
)
from deposits.models import DepositRequest, DepositTransition
from deposits.selectors import deposit_get, deposit_owner_id
from minting.chain import (
    ZERO_ADDRESS,
    ChainError,
    DepositMintedLog,
    NtzsClient,
    TransferLog,
    receipt_token_logs,
)
from minting.contract_artifact import deposit_ref
from minting.models import MintAttempt, MintTransaction, SafeBatchExport
from minting.rpc import mint_client
from minting.services.lanes import safe_exports_live_refusal
from minting.services.recording import MINT_LOG_ATTACH_ACTION, block_day, record_minted
from minting.services.safe import claim_holder, safe_execution

logger = logging.getLogger("reconciliation")

ATTACH_ACTION = MINT_LOG_ATTACH_ACTION
ATTACH_ROLES = (SUPER_ADMIN,)
S = DepositRequest.Status
MT = MintTransaction.Status
# A deposit a mint on chain may be attached to: paid and not minted, with no mint of ours
# that can still land (mint_processing has a signed attempt: confirm_mints records it), and
# not one the worker may pick up while the request waits for its checker: a mint_pending
# deposit would be minted again meanwhile, so it is routed to the Safe lane first (a review
# finding). mint_failed waits for a person; mint_retry refuses while an attach is pending.
ATTACHABLE = (S.MINT_FAILED, S.MINT_REQUIRES_SAFE)
LIVE_ATTEMPT = (MintAttempt.Status.SIGNED, MintAttempt.Status.SENT)
EVIDENCE_MAX = 4_000


class AttachRefused(ServiceError):
    """A log could not be attached to a deposit; nothing was written."""


@dataclass(frozen=True)
class AttachFacts:
    """What the chain says of the log, read by the maker and again by the checker."""

    tx_hash: str
    log_index: int
    block_number: int
    block_day: dt.date
    confirmations: int
    via_safe: bool  # executed by our Safe (it counts as Safe issuance on its day)


# --- Checks ---------------------------------------------------------------------------------


def _tx_hash(tx_hash: str) -> str:
    value = (tx_hash or "").strip().lower()
    if len(value) != 66 or not value.startswith("0x"):
        raise AttachRefused(
            _("%(hash)r is not a transaction hash (0x and 64 hex digits).") % {"hash": tx_hash}
        )
    try:
        int(value[2:], 16)
    except ValueError:
        raise AttachRefused(
            _("%(hash)r is not a transaction hash (0x and 64 hex digits).") % {"hash": tx_hash}
        ) from None
    return value


def attach_deposit_check(deposit: DepositRequest) -> None:
    """The deposit may take a mint log: paid, not minted, no mint of ours still able to land."""
    if deposit.status == S.MINTED:
        raise ConflictError(
            _("Deposit %(id)s is already minted (transaction %(tx)s); nothing to attach.")
            % {"id": deposit.pk, "tx": deposit.mint_tx_hash}
        )
    if deposit.status == S.MINT_PENDING:
        raise ConflictError(
            _(
                "Deposit %(id)s is mint_pending: the worker would mint it again while the "
                "request waits for a checker. Route it to the Safe lane first, then attach the "
                "log."
            )
            % {"id": deposit.pk}
        )
    if deposit.status not in ATTACHABLE:
        raise ConflictError(
            _(
                "Deposit %(id)s is %(status)s; a mint log is attached only to a deposit in "
                "mint_failed or mint_requires_safe."
            )
            % {"id": deposit.pk, "status": deposit.status}
        )
    mint = MintTransaction.objects.filter(deposit=deposit).first()
    if mint is None:
        return
    if mint.status == MT.AWAITING_CONFIRMATIONS:
        raise ConflictError(
            _(
                "A Safe mint of deposit %(id)s (%(tx)s) is waiting for confirmations; it is "
                "recorded by itself once deep enough."
            )
            % {"id": deposit.pk, "tx": mint.tx_hash}
        )
    if (
        mint.status in (MT.SIGNED, MT.SENT)
        or mint.attempts.filter(status__in=LIVE_ATTEMPT).exists()
    ):
        raise ConflictError(
            _(
                "A mint of deposit %(id)s signed by the worker can still land; wait until "
                "confirm_mints settles it."
            )
            % {"id": deposit.pk}
        )


def _log_free(tx_hash: str, log_index: int) -> None:
    holder = claim_holder(tx_hash=tx_hash, log_index=log_index)
    if holder is not None:
        raise AttachRefused(
            _(
                "The mint log %(tx)s#%(log)s is already claimed by %(holder)s; one mint log "
                "satisfies one thing."
            )
            % {"tx": tx_hash, "log": log_index, "holder": holder}
        )


def attach_facts_read(
    client: NtzsClient, *, deposit: DepositRequest, tx_hash: str, log_index: int
) -> AttachFacts:
    """The §7.9 checks of the log against the deposit, on the chain now; AttachRefused in one
    sentence otherwise."""
    try:
        receipt = client.receipt(tx_hash)
    except ChainError as exc:
        raise AttachRefused(
            _("The chain could not be read (%(exc)s); try again.") % {"exc": exc}
        ) from None
    if receipt is None:
        raise AttachRefused(
            _("The chain does not know the transaction %(tx)s; check the hash and the network.")
            % {"tx": tx_hash}
        )
    if receipt.get("status") != 1:
        raise AttachRefused(
            _("The transaction %(tx)s reverted; it minted nothing.") % {"tx": tx_hash}
        )
    logs = receipt_token_logs(receipt, token_address=client.address)
    by_index = {log.log_index: log for log in logs}
    log = by_index.get(log_index)
    if not (isinstance(log, TransferLog) and log.from_address == ZERO_ADDRESS):
        raise AttachRefused(
            _("The transaction %(tx)s has no mint log of the token at index %(log)s.")
            % {"tx": tx_hash, "log": log_index}
        )
    wallet = to_checksum_address(deposit.wallet.address)
    if log.to_address != wallet:
        raise AttachRefused(
            _("The log mints to %(to)s, not to the deposit's wallet %(wallet)s.")
            % {"to": log.to_address, "wallet": wallet}
        )
    units = tzs_to_units(deposit.amount_tzs)
    if log.amount_units != units:
        raise AttachRefused(
            _("The log mints %(minted)s nTZS, but deposit %(id)s is for %(tzs)s TZS.")
            % {
                "minted": units_format(log.amount_units),
                "id": deposit.pk,
                "tzs": f"{deposit.amount_tzs:,}",
            }
        )
    following = by_index.get(log_index + 1)
    if isinstance(following, DepositMintedLog) and following.deposit_ref != deposit_ref(deposit.pk):
        raise AttachRefused(
            _("The log was minted for another deposit's reference, not for deposit %(id)s.")
            % {"id": deposit.pk}
        )
    _log_free(tx_hash, log_index)
    try:
        confirmations = client.confirmation_head() - int(receipt["blockNumber"]) + 1
        day = block_day(client, int(receipt["blockNumber"]))
    except (ChainError, OSError, ValueError) as exc:
        raise AttachRefused(
            _("The chain could not be read (%(exc)s); try again.") % {"exc": type(exc).__name__}
        ) from None
    if confirmations < settings.MINT_CONFIRMATIONS:
        raise AttachRefused(
            _(
                "The transaction %(tx)s has %(n)s of the %(needed)s confirmations a mint needs; "
                "try again when it is deeper."
            )
            % {"tx": tx_hash, "n": max(confirmations, 0), "needed": settings.MINT_CONFIRMATIONS}
        )
    via_safe = (
        bool(settings.SAFE_ADDRESS)
        and to_checksum_address(settings.SAFE_ADDRESS)
        in safe_execution(receipt, safe=to_checksum_address(settings.SAFE_ADDRESS)).executors
    )
    # A payload exported for the signers could still mint the deposit a second time, whoever
    # executed this log (our Safe executing some other call leaves the export live). A Safe
    # execution of the exported call itself is recorded with "record Safe tx hash" instead.
    live = safe_exports_live_refusal(client, deposit)
    if live:
        raise AttachRefused(live)
    return AttachFacts(
        tx_hash=tx_hash,
        log_index=log_index,
        block_number=int(receipt["blockNumber"]),
        block_day=day,
        confirmations=confirmations,
        via_safe=via_safe,
    )


# --- The four-eyes action ---------------------------------------------------------------


def _validate(params: dict, target_id: str) -> None:
    """At the maker's request and again inside the approval: the deposit still takes a log,
    and the log is still free."""
    attach_deposit_check(deposit_get(deposit_id=target_id))
    _log_free(params["tx_hash"], params["log_index"])


def _prepare(request: DualControlRequest) -> dict:
    """The checker's own read of the chain, before the approval's transaction."""
    deposit = deposit_get(deposit_id=request.target_id)
    facts = attach_facts_read(
        mint_client(),
        deposit=deposit,
        tx_hash=request.params["tx_hash"],
        log_index=request.params["log_index"],
    )
    return {"facts": facts, "exports": _export_count(deposit.pk)}


def _export_count(deposit_id) -> int:
    return SafeBatchExport.objects.filter(deposits=deposit_id).count()


def _apply(request: DualControlRequest, checker, context: dict) -> None:
    facts: AttachFacts = context["facts"]
    deposit = deposit_get(deposit_id=request.target_id, for_update=True)
    attach_deposit_check(deposit)  # under the deposit's lock: no worker moved it meanwhile
    if _export_count(deposit.pk) != context["exports"]:
        # Exported after the checker's chain read: that payload was never checked as dead.
        raise ConflictError(
            _(
                "Deposit %(id)s was exported for the Safe after the chain was read; open the "
                "request again so the new export is checked."
            )
            % {"id": deposit.pk}
        )
    mint = MintTransaction.objects.select_for_update().filter(deposit=deposit).first()
    if mint is None:
        mint = MintTransaction.objects.create(
            deposit=deposit,
            chain_id=settings.CHAIN_ID,
            contract_address=to_checksum_address(settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA),
            to_address=to_checksum_address(deposit.wallet.address),
            amount_units=tzs_to_units(deposit.amount_tzs),
        )
    with transaction.atomic():
        recorded = record_minted(
            mint_id=mint.pk,
            tx_hash=facts.tx_hash,
            log_index=facts.log_index,
            block_day=facts.block_day,
            source=DepositTransition.Source.ADMIN,
            note=f"mint log attached under four eyes (request {request.pk})",
            via_safe=facts.via_safe,
            actor=checker,
        )
    if not recorded:
        holder = claim_holder(tx_hash=facts.tx_hash, log_index=facts.log_index)
        raise ConflictError(
            _(
                "The mint log %(tx)s#%(log)s was claimed by %(holder)s meanwhile; nothing was "
                "recorded."
            )
            % {"tx": facts.tx_hash, "log": facts.log_index, "holder": holder or _("another record")}
        )
    admin_action_record(
        actor=checker,
        action=ATTACH_ACTION,
        target_type="deposit",
        target_id=deposit.pk,
        params={
            "request_id": str(request.pk),
            "tx_hash": facts.tx_hash,
            "log_index": facts.log_index,
            "block_number": facts.block_number,
            "maker": str(request.maker_id),
        },
        outcome="minted",
    )
    logger.warning(
        "Mint log attached deposit=%s tx=%s log=%s maker=%s checker=%s",
        deposit.pk,
        facts.tx_hash,
        facts.log_index,
        request.maker_id,
        checker.pk,
    )


def register_dual_control_actions() -> None:
    dual_control_action_register(
        DualControlAction(
            name=ATTACH_ACTION,
            target_type="deposit",
            roles=ATTACH_ROLES,
            apply=_apply,
            validate=_validate,
            prepare=_prepare,
            beneficiary=deposit_owner_id,
        )
    )


# --- The maker's half ---------------------------------------------------------------------


def reconciliation_log_attach_request(
    *, maker, deposit_id, tx_hash: str, log_index: int, evidence: str
) -> DualControlRequest:
    """Ask a second super admin to record the mint log ``tx_hash#log_index`` as deposit
    ``deposit_id``'s mint. The chain is read now (a wrong recipient, amount or a claimed log
    is refused at once) and again at approval."""
    require_role(maker, *ATTACH_ROLES, doing=f"request {ATTACH_ACTION}")  # before any RPC
    evidence = (evidence or "").strip()
    if not evidence:
        raise AttachRefused(
            _(
                "Give the checker your evidence that this mint is this deposit's (who minted it, "
                "why it was not recorded)."
            )
        )
    if len(evidence) > EVIDENCE_MAX:
        raise AttachRefused(_("Keep the evidence under %(n)s characters.") % {"n": EVIDENCE_MAX})
    tx_hash = _tx_hash(tx_hash)
    if isinstance(log_index, bool) or not isinstance(log_index, int) or log_index < 0:
        raise AttachRefused(_("Give the log index of the mint log in that transaction."))
    deposit = deposit_get(deposit_id=deposit_id)
    attach_deposit_check(deposit)
    _log_free(tx_hash, log_index)
    pending = DualControlRequest.objects.filter(
        action=ATTACH_ACTION,
        decision=DualControlRequest.Decision.PENDING,
        params__tx_hash=tx_hash,
        params__log_index=log_index,
    ).first()
    if pending is not None:
        raise ConflictError(
            _(
                "An attach of %(tx)s#%(log)s is already waiting for a checker (request "
                "%(id)s); approve, reject or withdraw it first."
            )
            % {"tx": tx_hash, "log": log_index, "id": pending.pk}
        )
    facts = attach_facts_read(mint_client(), deposit=deposit, tx_hash=tx_hash, log_index=log_index)
    return dual_control_request_make(
        action=ATTACH_ACTION,
        target_id=deposit.pk,
        params={
            "deposit_id": str(deposit.pk),
            "tx_hash": tx_hash,
            "log_index": log_index,
            "block_number": facts.block_number,
            "to_address": to_checksum_address(deposit.wallet.address),
            "amount_tzs": deposit.amount_tzs,
        },
        evidence=evidence,
        maker=maker,
    )
