"""Reconciliation entries (DESIGN §4, §8): an on-chain movement the deposits do not explain,
recorded by two super admins through the four-eyes queue (``reconciliation.entry``).

The maker asks with ``reconciliation_entry_request``; nothing is written but the request and
its audit row. The checker's approval (``core.services.dual_control_approve``) re-reads the
chain first (``prepare``, outside any transaction) and then, in the approval's transaction,
inserts the entry (made by the maker, approved by the checker) and, for a mint log, the
``MintLogClaim`` naming it, so one log is claimed once: a second entry, a deposit's claim or
a Safe record on that log is refused.

Amounts are exact signed base units. Sign rules per entry type:

* ``untracked_mint``, ``test_mint``, ``double_mint``, ``opening_balance``: positive (supply
  that exists on chain without a deposit);
* ``burn``, ``wipe``: negative (supply removed on chain);
* ``manual_correction``, ``other``: either sign, never 0.

With a transaction hash the entry names one token ``Transfer`` log of a successful
transaction: a positive entry a Transfer from zero (a mint) to ``to_address`` of exactly the
amount, a negative one a Transfer to zero (a burn or wipe) from ``to_address`` of exactly the
opposite of the amount; its block is taken from the receipt. Without one, an opening balance
states the block at which it holds; other entries may state a block (snapshots count an entry
from its block on, and an entry without a block always).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from eth_utils import is_address, to_checksum_address

from accounts.models import Wallet
from core.exceptions import ConflictError, ServiceError
from core.models import DualControlRequest
from core.money import tzs_to_units
from core.roles import SUPER_ADMIN, require_role
from core.services import (
    DualControlAction,
    dual_control_action_register,
    dual_control_request_make,
)
from deposits.models import DepositRequest
from minting.chain import ZERO_ADDRESS, ChainError, TransferLog, receipt_token_logs
from minting.models import MintAttempt, MintLogClaim
from minting.rpc import mint_client
from reconciliation.models import ReconciliationEntry

logger = logging.getLogger("reconciliation")

ENTRY_ACTION = "reconciliation.entry"
ENTRY_ROLES = (SUPER_ADMIN,)
ET = ReconciliationEntry.EntryType
POSITIVE = frozenset({ET.UNTRACKED_MINT, ET.TEST_MINT, ET.DOUBLE_MINT, ET.OPENING_BALANCE})
NEGATIVE = frozenset({ET.BURN, ET.WIPE})
EITHER = frozenset({ET.MANUAL_CORRECTION, ET.OTHER})
TX_HASH_RE = re.compile(r"0x[0-9a-f]{64}")
REASON_MAX = 2_000
UINT256_MAX = 2**256 - 1


class EntryRefused(ServiceError):
    """A reconciliation entry was refused; nothing was written."""


@dataclass(frozen=True)
class EntryFacts:
    """What the chain says of the entry's log (None without a transaction hash)."""

    block_number: int
    to_address: str
    is_mint: bool


# --- Checks ---------------------------------------------------------------------------------


def _clean(
    *,
    entry_type: str,
    amount_units: int,
    reason: str,
    tx_hash: str,
    log_index: int | None,
    to_address: str,
    block_number: int | None,
) -> dict:
    """The request's parameters, checked and normalised, or EntryRefused in one sentence."""
    if entry_type not in ET.values:
        raise EntryRefused(
            f"{entry_type!r} is not an entry type; use one of {', '.join(ET.values)}."
        )
    if isinstance(amount_units, bool) or not isinstance(amount_units, int):
        raise EntryRefused("The amount must be a whole number of base units (10**18 per nTZS).")
    if amount_units == 0:
        raise EntryRefused("An entry of 0 explains nothing; give the amount in base units.")
    if abs(amount_units) > UINT256_MAX:
        raise EntryRefused("The amount does not fit a uint256.")
    if entry_type in POSITIVE and amount_units < 0:
        raise EntryRefused(f"A {entry_type} entry adds supply: its amount must be positive.")
    if entry_type in NEGATIVE and amount_units > 0:
        raise EntryRefused(f"A {entry_type} entry removes supply: its amount must be negative.")
    reason = (reason or "").strip()
    if not reason:
        raise EntryRefused("Say why this entry is needed (the reason is kept with it).")
    if len(reason) > REASON_MAX:
        raise EntryRefused(f"Keep the reason under {REASON_MAX} characters.")
    tx_hash = (tx_hash or "").strip().lower()
    if tx_hash and not TX_HASH_RE.fullmatch(tx_hash):
        raise EntryRefused(f"{tx_hash!r} is not a transaction hash (0x and 64 hex digits).")
    if tx_hash and (log_index is None or log_index < 0):
        raise EntryRefused("Give the log index of the Transfer log in that transaction.")
    if not tx_hash and log_index is not None:
        raise EntryRefused("A log index needs its transaction hash.")
    to_address = (to_address or "").strip()
    if to_address:
        if not is_address(to_address):
            raise EntryRefused(f"{to_address!r} is not an address.")
        to_address = to_checksum_address(to_address)
    if entry_type == ET.OPENING_BALANCE and (tx_hash or block_number is None):
        raise EntryRefused("An opening balance is stated at a block, without a transaction.")
    if block_number is not None and block_number < 0:
        raise EntryRefused("A block number is not negative.")
    return {
        "entry_id": str(uuid.uuid4()),
        "entry_type": str(entry_type),
        "amount_units": str(amount_units),  # JSON numbers lose digits in some readers
        "reason": reason,
        "tx_hash": tx_hash,
        "log_index": log_index,
        "to_address": to_address,
        "block_number": block_number,
    }


def _log_already_explained(chain_id: int, tx_hash: str, log_index: int) -> str | None:
    """Why this log cannot take an entry (a claim or an entry holds it), or None."""
    claim = MintLogClaim.objects.filter(
        chain_id=chain_id, tx_hash=tx_hash, log_index=log_index
    ).first()
    if claim is not None:
        holder = (
            f"deposit {claim.deposit_id}"
            if claim.deposit_id
            else f"entry {claim.reconciliation_entry_id}"
        )
        return f"The log {tx_hash}#{log_index} is already claimed by {holder}."
    if ReconciliationEntry.objects.filter(
        chain_id=chain_id, tx_hash=tx_hash, log_index=log_index
    ).exists():
        return f"The log {tx_hash}#{log_index} already has a reconciliation entry."
    return None


def entry_facts_read(params: dict) -> EntryFacts | None:
    """The chain's facts of the entry's log, or EntryRefused in one sentence: the receipt
    exists and succeeded, the log at ``log_index`` is the token's Transfer from zero (a
    positive amount) or to zero (a negative one), with the address and the exact amount."""
    tx_hash = params["tx_hash"]
    if not tx_hash:
        return None
    amount = int(params["amount_units"])
    log_index = params["log_index"]
    try:
        client = mint_client()
        receipt = client.receipt(tx_hash)
    except ChainError as exc:
        raise EntryRefused(f"The chain could not be read ({exc}); try again.") from None
    if receipt is None:
        raise EntryRefused(f"The chain does not know the transaction {tx_hash}.")
    if receipt.get("status") != 1:
        raise EntryRefused(f"The transaction {tx_hash} reverted; it moved no token.")
    logs = {
        log.log_index: log
        for log in receipt_token_logs(receipt, token_address=client.address)
        if isinstance(log, TransferLog)
    }
    log = logs.get(log_index)
    if log is None:
        raise EntryRefused(
            f"The transaction {tx_hash} has no Transfer log of the token at index {log_index}."
        )
    is_mint = log.from_address.lower() == ZERO_ADDRESS
    is_burn = log.to_address.lower() == ZERO_ADDRESS
    if amount > 0 and not is_mint:
        raise EntryRefused(
            f"The log {tx_hash}#{log_index} is not a mint; a positive entry names a mint log."
        )
    if amount < 0 and not is_burn:
        raise EntryRefused(
            f"The log {tx_hash}#{log_index} is not a burn; a negative entry names a burn log."
        )
    holder = log.to_address if is_mint else log.from_address
    if params["to_address"] and params["to_address"].lower() != holder.lower():
        raise EntryRefused(
            f"The log {tx_hash}#{log_index} moved tokens of {holder}, "
            f"not of {params['to_address']}."
        )
    if log.amount_units != abs(amount):
        raise EntryRefused(
            f"The log {tx_hash}#{log_index} moved {log.amount_units} base units, "
            f"not {abs(amount)}; the entry's amount must be the log's exactly."
        )
    if is_mint:
        _not_a_deposits_mint(tx_hash=tx_hash, to_address=holder, amount_units=log.amount_units)
    return EntryFacts(block_number=int(receipt["blockNumber"]), to_address=holder, is_mint=is_mint)


# An open deposit that a mint on chain may belong to: the entry would explain away its mint
# while the deposit waits, and a retry would then mint it twice with the books balanced.
OPEN_MINT_STATUSES = (
    DepositRequest.Status.MINT_PENDING,
    DepositRequest.Status.MINT_PROCESSING,
    DepositRequest.Status.MINT_FAILED,
    DepositRequest.Status.MINT_REQUIRES_SAFE,
)


def _not_a_deposits_mint(*, tx_hash: str, to_address: str, amount_units: int) -> None:
    """A mint log that is (or may be) a deposit's own mint is claimed by that deposit, never
    explained by an entry: one of our attempts sent it, or an open deposit waits for exactly
    this amount at this wallet (attach the log to it instead)."""
    if MintAttempt.objects.filter(tx_hash__iexact=tx_hash).exists():
        raise EntryRefused(
            f"The transaction {tx_hash} is one of our own mints; its deposit claims it when "
            "it is confirmed."
        )
    waiting = (
        DepositRequest.objects.filter(
            status__in=OPEN_MINT_STATUSES, wallet__address__iexact=to_address
        )
        .values_list("pk", "amount_tzs")
        .order_by("created_at")
    )
    for deposit_id, amount_tzs in waiting:
        if tzs_to_units(amount_tzs) == amount_units:
            raise EntryRefused(
                f"Deposit {deposit_id} waits for exactly this mint at {to_address}; attach the "
                "log to the deposit instead of recording an entry."
            )


# --- The four-eyes action ---------------------------------------------------------------


def _validate(params: dict, target_id: str) -> None:
    """At the maker's request and again inside the approval: the log is still free."""
    if params.get("tx_hash"):
        why = _log_already_explained(settings.CHAIN_ID, params["tx_hash"], params["log_index"])
        if why:
            raise EntryRefused(why)


def _beneficiary(params: dict):
    """The owner of the verified wallet the entry's address is (a test mint to a staff
    member's own wallet is decided by two others)."""
    address = params.get("to_address")
    if not address:
        return None
    return (
        Wallet.objects.filter(address__iexact=address, verified_at__isnull=False)
        .values_list("user_id", flat=True)
        .first()
    )


def _prepare(request: DualControlRequest) -> dict:
    """The checker's own read of the chain, before the approval's transaction."""
    facts = entry_facts_read(request.params)
    return {"facts": facts}


def _apply(request: DualControlRequest, checker, context: dict) -> None:
    params = request.params
    facts: EntryFacts | None = context.get("facts")
    chain_id = settings.CHAIN_ID
    block_number = facts.block_number if facts else params["block_number"]
    to_address = facts.to_address if facts else params["to_address"]
    try:
        with transaction.atomic():
            entry = ReconciliationEntry.objects.create(
                id=uuid.UUID(params["entry_id"]),
                chain_id=chain_id,
                tx_hash=params["tx_hash"],
                log_index=params["log_index"],
                block_number=block_number,
                to_address=to_address,
                amount_units=int(params["amount_units"]),
                entry_type=params["entry_type"],
                reason=params["reason"],
                notes=request.evidence,
                created_by_id=request.maker_id,
                approved_by=checker,
                dual_control_request_id=request.pk,
            )
            if facts is not None and facts.is_mint:
                MintLogClaim.objects.create(
                    chain_id=chain_id,
                    tx_hash=params["tx_hash"],
                    log_index=params["log_index"],
                    reconciliation_entry_id=entry.pk,
                )
    except IntegrityError:
        raise ConflictError(
            _log_already_explained(chain_id, params["tx_hash"], params["log_index"])
            or "This entry was recorded a moment ago by another approval."
        ) from None
    logger.warning(
        "Reconciliation entry recorded id=%s type=%s amount_units=%s tx=%s log=%s",
        entry.pk,
        entry.entry_type,
        entry.amount_units,
        entry.tx_hash or "-",
        entry.log_index if entry.log_index is not None else "-",
    )


def register_dual_control_actions() -> None:
    dual_control_action_register(
        DualControlAction(
            name=ENTRY_ACTION,
            target_type="reconciliation_entry",
            roles=ENTRY_ROLES,
            apply=_apply,
            validate=_validate,
            prepare=_prepare,
            params_beneficiary=_beneficiary,
        )
    )


# --- The maker's half ---------------------------------------------------------------------


def reconciliation_entry_request(
    *,
    maker,
    entry_type: str,
    amount_units: int,
    reason: str,
    tx_hash: str = "",
    log_index: int | None = None,
    to_address: str = "",
    block_number: int | None = None,
    evidence: str = "",
) -> DualControlRequest:
    """Ask a second super admin to record an entry. The chain's facts are checked now (so a
    wrong amount or address is refused at once) and again by the checker's approval.
    ``evidence`` is kept as the entry's notes."""
    require_role(maker, *ENTRY_ROLES, doing=f"request {ENTRY_ACTION}")  # before any RPC
    params = _clean(
        entry_type=entry_type,
        amount_units=amount_units,
        reason=reason,
        tx_hash=tx_hash,
        log_index=log_index,
        to_address=to_address,
        block_number=block_number,
    )
    if params["tx_hash"]:
        _validate(params, params["entry_id"])
        pending = DualControlRequest.objects.filter(
            action=ENTRY_ACTION,
            decision=DualControlRequest.Decision.PENDING,
            params__tx_hash=params["tx_hash"],
            params__log_index=params["log_index"],
        ).first()
        if pending is not None:
            raise ConflictError(
                f"An entry for {params['tx_hash']}#{params['log_index']} is already waiting "
                f"for a checker (request {pending.pk}); approve, reject or withdraw it first."
            )
        facts = entry_facts_read(params)
        params["to_address"] = facts.to_address
        params["block_number"] = facts.block_number
    return dual_control_request_make(
        action=ENTRY_ACTION,
        target_id=params["entry_id"],
        params=params,
        evidence=(evidence or "").strip(),
        maker=maker,
    )
