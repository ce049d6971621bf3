"""The Safe mint lane (DESIGN §7.9): the exact call and a Transaction Builder batch file for
``mint_requires_safe`` deposits, and the record of an executed Safe transaction by its hash.

A hash is accepted only when its receipt proves the mint: status 1, an ``ExecutionSuccess`` of
``SAFE_ADDRESS`` (Safe 1.3 and 1.4 layouts; ``receipt.to`` may be a relayer) and, emitted by the
NTZS contract, this deposit's ``DepositMinted(ref)`` (its paired ``Transfer`` is claimed) or,
without deposit references, an unclaimed ``Transfer`` from zero to the deposit's wallet for
exactly the deposit's amount in base units. Every refusal is one sentence. Chain reads happen
before the database transaction; the record itself goes through ``recording.record_minted``.

Which method an export uses is the policy (``deposit_refs.mint_with_ref_policy``); how a Safe
transaction is checked afterwards is what the deposit's exports used (or, once recorded,
``MintTransaction.uses_deposit_ref``), never the policy of the day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import Web3Exception

from core.clock import now
from core.exceptions import ConflictError, ServiceError
from core.models import DualControlRequest
from core.money import tzs_to_units, units_format
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, require_not_beneficiary, require_role
from core.services import admin_action_record
from deposits.models import DepositRequest
from deposits.selectors import deposit_get
from minting.chain import (
    ZERO_ADDRESS,
    ChainError,
    ChainUnavailable,
    DepositMintedLog,
    NtzsClient,
    TransferLog,
    hex_str,
    receipt_token_logs,
)
from minting.contract_artifact import NTZS_ABI, deposit_ref
from minting.models import MintLogClaim, MintTransaction, SafeBatchExport
from minting.rpc import mint_client
from minting.services.deposit_refs import (
    MINT_FOR_DEPOSIT,
    PLAIN_MINT,
    DepositRefUnstated,
    export_method,
    export_methods,
    mint_with_ref_policy,
    signs_with_ref,
)
from minting.services.recording import block_day, record_minted
from minting.signing import mint_calldata

logger = logging.getLogger("minting")
S = DepositRequest.Status
MT = MintTransaction.Status
OPERATOR_ROLES = (PLATFORM_COMPLIANCE, SUPER_ADMIN)
TX_HASH_RE = re.compile(r"0x[0-9a-f]{64}")
TX_BUILDER_VERSION = "1.18.0"
# The four-eyes record "this Safe nonce was consumed and minted nothing" (made in ``lanes``).
NONCE_RECORD = "safe_nonce_consumed_record"

# Safe 1.3.0: ExecutionSuccess(bytes32 txHash, uint256 payment), both in data; Safe 1.4.1:
# txHash indexed. Same topic 0.
EXECUTION_SUCCESS_TOPIC = keccak(text="ExecutionSuccess(bytes32,uint256)")
# Emitted by the L2 singletons (the ones Safe{Wallet} deploys on Base) before the call runs;
# its additionalInfo is abi.encode(nonce, msg.sender, threshold), nonce being the one used.
SAFE_MULTISIG_TX_TOPIC = keccak(
    text="SafeMultiSigTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,"
    "address,address,bytes,bytes)"
)
SAFE_MULTISIG_TX_TYPES = [
    "address",
    "uint256",
    "bytes",
    "uint8",
    "uint256",
    "uint256",
    "uint256",
    "address",
    "address",
    "bytes",
    "bytes",
]


class SafeRefused(ServiceError):
    """A Safe export or record was refused; nothing was written."""


class SafeRecordRefused(SafeRefused):
    """The transaction hash does not prove this deposit's Safe mint."""


class ChainReadRefused(SafeRefused):
    """The chain could not be read, so nothing could be proven."""


class SafeExportCouldMintTwice(SafeRefused):
    """An earlier export of the same deposit could still be executed next to this one and the
    person exporting did not confirm having checked exactly those exports; nothing was
    written."""

    def __init__(self, message: str, *, export_ids: tuple[uuid.UUID, ...]):
        super().__init__(message)
        self.export_ids = export_ids  # the unconfirmed earlier exports, oldest first


# --- Shared helpers ---------------------------------------------------------------------------


def require_operator(actor, doing: str, roles: tuple[str, ...] = OPERATOR_ROLES) -> None:
    """The Safe lane's operators (compliance or super admin unless ``roles`` says)."""
    require_role(actor, *roles, doing=doing)


def chain_client() -> NtzsClient:
    """The token on the configured node; a chain problem becomes one sentence."""
    try:
        return mint_client()
    except ChainError as exc:
        raise ChainReadRefused(f"The chain could not be read: {exc}") from None


def mint_with_ref(client_factory) -> bool:
    """Whether a new export uses mintForDeposit (the one policy; a stated setting reads no
    chain), its refusals as one sentence."""
    try:
        return mint_with_ref_policy(client_factory, require_agreement=False)
    except DepositRefUnstated as exc:
        raise SafeRefused(str(exc)) from None
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainReadRefused(
            f"The chain could not be read ({type(exc).__name__}); try again."
        ) from None


def exported_with_ref(deposit_id: uuid.UUID, client_factory) -> list[bool]:
    """How this deposit's Safe payloads were exported (mintForDeposit or not), latest
    export first; with no export (a Safe transaction made by hand), the policy."""
    methods = export_methods(deposit_id)
    if not methods:
        return [mint_with_ref(client_factory)]
    return [method == MINT_FOR_DEPOSIT for method in methods]


def tx_hash_normalise(tx_hash: str) -> str:
    value = (tx_hash or "").strip().lower()
    if not TX_HASH_RE.fullmatch(value):
        raise SafeRecordRefused(
            f"{tx_hash!r} is not a transaction hash (0x followed by 64 hex digits)."
        )
    return value


def safe_address() -> str:
    if not settings.SAFE_ADDRESS:
        raise SafeRefused(
            "SAFE_ADDRESS is not set, so no Safe transaction can be checked; "
            "configure the Safe's address."
        )
    return to_checksum_address(settings.SAFE_ADDRESS)


@dataclass(frozen=True)
class SafeExecution:
    """What a receipt says about the Safe transactions it executed."""

    executors: tuple[str, ...]  # addresses that emitted ExecutionSuccess, in log order
    nonces: tuple[int, ...]  # Safe nonces used by SAFE_ADDRESS (L2 singletons' event)


def safe_execution(receipt, *, safe: str) -> SafeExecution:
    executors: list[str] = []
    nonces: list[int] = []
    for log in receipt["logs"]:
        if not log["topics"]:
            continue
        topic0 = bytes(log["topics"][0])
        emitter = to_checksum_address(log["address"])
        if topic0 == EXECUTION_SUCCESS_TOPIC:
            executors.append(emitter)
        elif topic0 == SAFE_MULTISIG_TX_TOPIC and emitter == safe:
            fields = abi_decode(SAFE_MULTISIG_TX_TYPES, bytes(log["data"]))
            nonce, _sender, _threshold = abi_decode(["uint256", "address", "uint256"], fields[10])
            nonces.append(nonce)
    return SafeExecution(executors=tuple(executors), nonces=tuple(nonces))


def safe_execution_require(receipt, *, tx_hash: str, safe: str) -> SafeExecution:
    """ExecutionSuccess emitted by our Safe, wherever the transaction was sent to."""
    execution = safe_execution(receipt, safe=safe)
    if not execution.executors:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} is not a successful Safe execution: "
            "it has no ExecutionSuccess event."
        )
    if safe not in execution.executors:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} was executed by the Safe "
            f"{execution.executors[0]}, not by our Safe {safe}."
        )
    return execution


def receipt_mint_logs_elsewhere(receipt, *, token: str) -> list[str]:
    """Addresses other than the token that emitted a Transfer from zero or a DepositMinted."""
    others = {to_checksum_address(log["address"]) for log in receipt["logs"]} - {token}
    found = []
    for address in sorted(others):
        for log in receipt_token_logs(receipt, token_address=address):
            if isinstance(log, DepositMintedLog) or log.from_address == ZERO_ADDRESS:
                found.append(address)
                break
    return found


def claim_holder(*, tx_hash: str, log_index: int) -> str | None:
    claim = MintLogClaim.objects.filter(
        chain_id=settings.CHAIN_ID, tx_hash=tx_hash, log_index=log_index
    ).first()
    if claim is None:
        return None
    if claim.deposit_id is not None:
        return f"deposit {claim.deposit_id}"
    return f"reconciliation entry {claim.reconciliation_entry_id}"


# --- The exact call and the batch file --------------------------------------------------------


_token = Web3().eth.contract(abi=NTZS_ABI)


def token_calldata(method: str, args: list) -> str:
    """Calldata of a token function (no network)."""
    return _token.encode_abi(method, args=args)


def _abi_function(name: str) -> dict:
    return next(
        entry for entry in NTZS_ABI if entry["type"] == "function" and entry["name"] == name
    )


def mint_call(*, deposit: DepositRequest, token: str, with_ref: bool) -> dict:
    """The one call the Safe must execute for this deposit (with its calldata)."""
    to = to_checksum_address(deposit.wallet.address)
    units = tzs_to_units(deposit.amount_tzs)
    ref = deposit_ref(deposit.pk) if with_ref else None
    method = MINT_FOR_DEPOSIT if with_ref else PLAIN_MINT
    values = [to, str(units)] + ([hex_str(ref)] if ref is not None else [])
    return contract_call(
        token=token,
        method=method,
        values=values,
        data=hex_str(mint_calldata(to=to, amount_units=units, deposit_ref=ref)),
        deposit_id=deposit.pk,
        amount_tzs=deposit.amount_tzs,
    )


def contract_call(*, token: str, method: str, values: list[str], data: str, **extra) -> dict:
    abi = _abi_function(method)
    names = [item["name"] for item in abi["inputs"]]
    types = [item["type"] for item in abi["inputs"]]
    call = {
        "to": to_checksum_address(token),
        "value": "0",
        "method": method,
        "signature": f"{method}({','.join(types)})",
        "args": dict(zip(names, values, strict=True)),
        "data": data,
        "text": f"{method}({', '.join(values)}) on {to_checksum_address(token)}",
    }
    return call | {key: str(value) for key, value in extra.items()}


def _batch_transaction(call: dict) -> dict:
    abi = _abi_function(call["method"])
    return {
        "to": call["to"],
        "value": "0",
        "data": call["data"],
        "contractMethod": {
            "inputs": [
                {
                    "internalType": item.get("internalType", item["type"]),
                    "name": item["name"],
                    "type": item["type"],
                }
                for item in abi["inputs"]
            ],
            "name": call["method"],
            "payable": False,
        },
        "contractInputsValues": dict(call["args"]),
    }


def _serialise_for_checksum(value) -> str:
    """The Transaction Builder's checksum serialisation (sorted keys, then values)."""
    if isinstance(value, list):
        return "[" + ",".join(_serialise_for_checksum(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value)
        text = "{" + json.dumps(keys, separators=(",", ":"), ensure_ascii=False)
        for key in keys:
            text += _serialise_for_checksum(value[key]) + ","
        return text + "}"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def batch_file(*, calls: list[dict], name: str, description: str) -> dict:
    """A Safe Transaction Builder batch file ("Load" it in the Transaction Builder app)."""
    batch = {
        "version": "1.0",
        "chainId": str(settings.CHAIN_ID),
        "createdAt": int(now().timestamp() * 1000),
        "meta": {
            "name": name,
            "description": description,
            "txBuilderVersion": TX_BUILDER_VERSION,
            "createdFromSafeAddress": to_checksum_address(settings.SAFE_ADDRESS)
            if settings.SAFE_ADDRESS
            else "",
            "createdFromOwnerAddress": "",
        },
        "transactions": [_batch_transaction(call) for call in calls],
    }
    batch["meta"]["checksum"] = batch_checksum(batch)
    return batch


def batch_checksum(batch: dict) -> str:
    """The Transaction Builder's checksum of a batch file: keccak of its serialisation with
    meta.name set to null (the Builder lets a file be renamed without breaking it). The
    Builder validates a loaded file by removing meta.checksum and comparing this value."""
    unnamed = batch | {"meta": batch["meta"] | {"name": None}}
    return hex_str(keccak(text=_serialise_for_checksum(unnamed)))


def _unique_ids(deposit_ids: Iterable) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for value in deposit_ids:
        deposit_id = deposit_get(deposit_id=value).pk
        if deposit_id not in ids:
            ids.append(deposit_id)
    if not ids:
        raise SafeRefused("Name at least one deposit to export.")
    return ids


def approved_nonce_records(deposit_id: uuid.UUID) -> list[DualControlRequest]:
    """The deposit's consumed Safe nonces, recorded by a maker and approved by a checker."""
    return list(
        DualControlRequest.objects.filter(
            action=NONCE_RECORD,
            target_id=str(deposit_id),
            decision=DualControlRequest.Decision.APPROVED,
        )
    )


def nonce_export_covered(export: SafeBatchExport, records: list[DualControlRequest]) -> bool:
    """Whether a plain-mint export is dead: an approved record consumed its Safe nonce (the
    export's own, or the proposal's nonce the maker named). The same rule decides the
    route-back and refund (``lanes``) and whether a new export could mint twice."""
    for record in records:
        consumed = record.params.get("safe_nonce")
        if export.safe_nonce is not None:
            if consumed is not None and consumed >= export.safe_nonce:
                return True
        elif record.made_at > export.at and record.params.get("proposal_nonce") is not None:
            return True  # the maker named the proposal's nonce; validated ≤ consumed
    return False


def exports_that_could_double(
    *,
    deposit_id: uuid.UUID,
    new_method: str,
    exports: Iterable[SafeBatchExport],
    ref_voided: bool | None,
) -> list[SafeBatchExport]:
    """The deposit's earlier ``exports`` that may still be executed and, next to a new call
    of ``new_method``, would mint it twice. The token refuses a second mint of a reference
    only when both calls are ``mintForDeposit``; a plain ``mint`` on either side mints again.
    A ``mintForDeposit`` export is dead once its reference is voided (``ref_voided``; None:
    not known, so alive); a plain one once two people recorded its Safe nonce consumed."""
    exports = list(exports)
    methods = [export_method(export, deposit_id) for export in exports]
    records = (
        approved_nonce_records(deposit_id)
        if any(method != MINT_FOR_DEPOSIT for method in methods)
        else []
    )
    doubling = []
    for export, method in zip(exports, methods, strict=True):
        if method == MINT_FOR_DEPOSIT:
            if new_method == MINT_FOR_DEPOSIT or ref_voided is True:
                continue
        elif nonce_export_covered(export, records):
            continue
        doubling.append(export)
    return doubling


def safe_batch_file(
    *,
    deposit_ids: Iterable,
    actor,
    safe_nonce: int | None = None,
    checked_exports: Iterable = (),
) -> dict:
    """The exact call of each ``mint_requires_safe`` deposit and a Transaction Builder batch
    file for all of them; every call writes a ``SafeBatchExport`` and an ``AdminAction``
    (after an export, no payment may be left unbacked).

    Refused (``SafeExportCouldMintTwice``) while an earlier export of one of these deposits
    could still be executed next to this one (``exports_that_could_double``), unless each
    such export is in ``checked_exports``: the ones the person checked in the Safe app will
    never be executed. The rule is evaluated with the deposits locked, so an export made
    after the person looked is never confirmed by them."""
    require_operator(actor, "export Safe mint payloads")
    if safe_nonce is not None and (
        isinstance(safe_nonce, bool) or not isinstance(safe_nonce, int) or safe_nonce < 0
    ):
        raise SafeRefused(f"The Safe nonce must be a whole number ≥ 0, not {safe_nonce!r}.")
    ids = _unique_ids(deposit_ids)
    for deposit_id, owner_id in DepositRequest.objects.filter(pk__in=ids).values_list(
        "pk", "user_id"
    ):
        require_not_beneficiary(actor, owner_id, doing=f"export the Safe mint of {deposit_id}")
    checked = _checked_export_ids(checked_exports)
    with_ref = mint_with_ref(chain_client)  # may read the chain: before any lock
    # Under the policy every reference is read (it decides the method). Otherwise only those
    # of deposits exported before, as far as the chain answers: an earlier mintForDeposit
    # export is dead only once its reference is voided. A void is final, so an answer read
    # here, before the lock, can only be more cautious than the chain by then.
    if with_ref:
        voided = _voided_refs(ids)
    else:
        exported = set(
            SafeBatchExport.objects.filter(deposits__in=ids).values_list("deposits", flat=True)
        )
        voided = _voided_refs_known([d for d in ids if d in exported])
    return _safe_batch_file_write(
        ids=ids,
        actor=actor,
        safe_nonce=safe_nonce,
        with_ref=with_ref,
        voided=voided,
        checked=checked,
        head_block=_export_head_block(),
    )


def _checked_export_ids(values: Iterable) -> frozenset[uuid.UUID]:
    checked = set()
    for value in values:
        try:
            checked.add(uuid.UUID(str(value).strip()))
        except ValueError:
            raise SafeRefused(f"{value!r} is not the id of a Safe export.") from None
    return frozenset(checked)


def _export_head_block() -> int | None:
    """The chain head before the export exists: its payload cannot mint below it, so the
    route-back's log reads may start there. Unreadable → None (reads then start at the
    deploy block: slower, never incomplete), so an export never waits for the chain."""
    try:
        return mint_client().head()
    except (ChainError, OSError, ValueError, Web3Exception):
        return None


def _voided_refs(ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Whether each deposit's reference was voided (a route-back after an earlier export):
    like the worker's signature, such a deposit's new export is a plain mint (mintForDeposit
    would revert)."""
    client = chain_client()
    try:
        return {d: bool(client.is_deposit_ref_voided(deposit_ref(d))) for d in ids}
    except ChainError as exc:
        raise ChainReadRefused(f"The chain could not be read ({exc}); try again.") from None


def _voided_refs_known(ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """The same where the chain answers; an unanswered one is left out (not known, so its
    mintForDeposit exports count as alive) and never stops a plain export."""
    if not ids:
        return {}
    try:
        return _voided_refs(ids)
    except (ChainReadRefused, OSError, ValueError, Web3Exception):
        return {}


@transaction.atomic(durable=True)
def _safe_batch_file_write(
    *,
    ids: list[uuid.UUID],
    actor,
    safe_nonce: int | None,
    with_ref: bool,
    voided: dict[uuid.UUID, bool],
    checked: frozenset[uuid.UUID] = frozenset(),
    head_block: int | None = None,
) -> dict:
    # The deposit rows stay locked until the export is written, so a route-back or a refund
    # (which lock them too) sees every export made before it, and so does a concurrent export
    # of the same deposit (it waits here, then reads this one's export below).
    deposits = {
        d.pk: d
        for d in DepositRequest.objects.select_for_update(of=("self",))
        .select_related("wallet")
        .filter(pk__in=ids)
    }
    for deposit_id in ids:
        exportable_check(deposits[deposit_id])
    token = settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA
    if not token:
        raise SafeRefused("NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA is not set; configure the token.")
    calls = [
        mint_call(
            deposit=deposits[d],
            token=token,
            with_ref=signs_with_ref(policy=with_ref, ref_voided=voided.get(d, False)),
        )
        for d in ids
    ]
    _could_mint_twice_check(ids=ids, calls=calls, voided=voided, checked=checked)
    total = sum(deposits[d].amount_tzs for d in ids)
    nonce_note = f" Propose it at Safe nonce {safe_nonce}." if safe_nonce is not None else ""
    description = (
        f"nTZS mint for {len(ids)} deposit(s), {total:,} TZS in all: "
        + ", ".join(f"{d} ({deposits[d].amount_tzs:,} TZS)" for d in ids)
        + "."
        + nonce_note
    )
    payload = {
        "chain_id": settings.CHAIN_ID,
        "token": to_checksum_address(token),
        "safe_address": to_checksum_address(settings.SAFE_ADDRESS) if settings.SAFE_ADDRESS else "",
        "safe_nonce": safe_nonce,
        "with_ref": with_ref,
        "calls": calls,
        "batch": batch_file(
            calls=calls, name=f"nTZS Safe mint ({len(ids)} deposit(s))", description=description
        ),
    }
    export = SafeBatchExport.objects.create(
        safe_nonce=safe_nonce, actor=actor, payload=payload, logs_from_block=head_block
    )
    export.deposits.set(ids)
    admin_action_record(
        actor=actor,
        action="safe.batch_file",
        target_type="safe_batch_export",
        target_id=export.pk,
        params={
            "deposits": [str(d) for d in ids],
            "safe_nonce": safe_nonce,
            "method": calls[0]["method"],
        },
    )
    return {"export_id": str(export.pk)} | payload


def _could_mint_twice_check(
    *,
    ids: list[uuid.UUID],
    calls: list[dict],
    voided: dict[uuid.UUID, bool],
    checked: frozenset[uuid.UUID],
) -> None:
    """Refuses while an earlier export that could mint a deposit a second time next to this
    one is not among the exports the person confirmed; run with the deposits locked."""
    earlier: dict[uuid.UUID, list[SafeBatchExport]] = {d: [] for d in ids}
    for export in (
        SafeBatchExport.objects.filter(deposits__in=ids)
        .prefetch_related("deposits")
        .order_by("at", "pk")
        .distinct()
    ):
        for deposit in export.deposits.all():
            if deposit.pk in earlier:
                earlier[deposit.pk].append(export)
    unconfirmed: list[SafeBatchExport] = []
    for deposit_id, call in zip(ids, calls, strict=True):
        for export in exports_that_could_double(
            deposit_id=deposit_id,
            new_method=call["method"],
            exports=earlier[deposit_id],
            ref_voided=voided.get(deposit_id),
        ):
            if export.pk not in checked and export not in unconfirmed:
                unconfirmed.append(export)
    if unconfirmed:
        raise SafeExportCouldMintTwice(
            "This export could mint twice: earlier export(s) "
            + ", ".join(str(export.pk) for export in unconfirmed)
            + " of these deposits can still be executed, so check in the Safe app that none "
            "of them will be (rejected, or replaced at the same Safe nonce) and confirm "
            "exactly those exports.",
            export_ids=tuple(export.pk for export in unconfirmed),
        )


def exportable_check(deposit: DepositRequest) -> None:
    if deposit.status != S.MINT_REQUIRES_SAFE:
        raise ConflictError(
            f"Deposit {deposit.pk} is {deposit.status}; only a deposit in "
            "mint_requires_safe is minted through the Safe."
        )
    if deposit.hold_reason:
        raise ConflictError(
            f"Deposit {deposit.pk} is on hold ({deposit.hold_reason}); release "
            "the hold before exporting its Safe payload."
        )
    awaiting = (
        MintTransaction.objects.filter(deposit=deposit, status=MT.AWAITING_CONFIRMATIONS)
        .values_list("tx_hash", flat=True)
        .first()
    )
    if awaiting:
        raise ConflictError(
            f"A Safe mint of deposit {deposit.pk} ({awaiting}) is waiting for "
            "confirmations; do not export another one."
        )


# --- Recording an executed Safe transaction --------------------------------------------------


@dataclass(frozen=True)
class SafeMintEvidence:
    tx_hash: str
    log_index: int  # the Transfer-from-zero log that will be claimed
    block_number: int
    block_day: dt.date
    confirmations: int
    with_ref: bool  # checked as a mintForDeposit mint (DepositMinted) or a plain one


def _mint_log_with_ref(
    logs, *, deposit: DepositRequest, ref: bytes, tx_hash: str, elsewhere: list[str], token: str
) -> TransferLog:
    minted = [log for log in logs if isinstance(log, DepositMintedLog) and log.deposit_ref == ref]
    if not minted:
        if elsewhere and not any(isinstance(log, DepositMintedLog) for log in logs):
            raise SafeRecordRefused(
                f"Transaction {tx_hash} minted on the token {elsewhere[0]}, not on NTZS {token}."
            )
        raise SafeRecordRefused(
            f"Transaction {tx_hash} has no matching Transfer: NTZS emitted "
            f"no DepositMinted for deposit {deposit.pk}'s reference."
        )
    paired = next(
        (
            log
            for log in logs
            if isinstance(log, TransferLog)
            and log.log_index == minted[0].log_index - 1
            and log.from_address == ZERO_ADDRESS
        ),
        None,
    )
    if paired is None:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} has no matching Transfer: its "
            "DepositMinted is not preceded by a Transfer from the zero "
            "address."
        )
    return paired


def _mint_log_plain(
    logs, *, deposit: DepositRequest, tx_hash: str, elsewhere: list[str], token: str
) -> TransferLog:
    mints = [
        log for log in logs if isinstance(log, TransferLog) and log.from_address == ZERO_ADDRESS
    ]
    if not mints:
        if elsewhere:
            raise SafeRecordRefused(
                f"Transaction {tx_hash} minted on the token {elsewhere[0]}, not on NTZS {token}."
            )
        raise SafeRecordRefused(
            f"Transaction {tx_hash} has no matching Transfer: NTZS minted nothing in it."
        )
    wallet = to_checksum_address(deposit.wallet.address)
    units = tzs_to_units(deposit.amount_tzs)
    exact = [log for log in mints if log.to_address == wallet and log.amount_units == units]
    for log in exact:
        if claim_holder(tx_hash=tx_hash, log_index=log.log_index) is None:
            return log
    if exact:
        return exact[0]  # every exact log is claimed: the caller says by what
    to_wallet = [log for log in mints if log.to_address == wallet]
    if to_wallet:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} mints the wrong amount: "
            f"{units_format(to_wallet[0].amount_units)} to the deposit's wallet, "
            f"but deposit {deposit.pk} is for {deposit.amount_tzs:,} TZS."
        )
    raise SafeRecordRefused(
        f"Transaction {tx_hash} mints to the wrong recipient "
        f"{mints[0].to_address}, not to the deposit's wallet {wallet}."
    )


def safe_mint_evidence(
    client: NtzsClient, *, deposit: DepositRequest, tx_hash: str, with_ref: bool
) -> SafeMintEvidence:
    """Every check of DESIGN §7.9 on the receipt, in order; SafeRecordRefused otherwise."""
    receipt = client.receipt(tx_hash)
    if receipt is None:
        raise SafeRecordRefused(
            f"Transaction {tx_hash} was not found on chain "
            f"{settings.CHAIN_ID}; check the hash and the network, or wait "
            "until it is mined."
        )
    if receipt["status"] != 1:
        raise SafeRecordRefused(f"Transaction {tx_hash} reverted on chain; it minted nothing.")
    safe_execution_require(receipt, tx_hash=tx_hash, safe=safe_address())
    token = client.address
    logs = receipt_token_logs(receipt, token_address=token)
    elsewhere = receipt_mint_logs_elsewhere(receipt, token=token)
    if with_ref:
        transfer = _mint_log_with_ref(
            logs,
            deposit=deposit,
            ref=deposit_ref(deposit.pk),
            tx_hash=tx_hash,
            elsewhere=elsewhere,
            token=token,
        )
        wallet = to_checksum_address(deposit.wallet.address)
        if transfer.to_address != wallet:
            raise SafeRecordRefused(
                f"Transaction {tx_hash} mints to the wrong recipient "
                f"{transfer.to_address}, not to the deposit's wallet "
                f"{wallet}."
            )
        if transfer.amount_units != tzs_to_units(deposit.amount_tzs):
            raise SafeRecordRefused(
                f"Transaction {tx_hash} mints the wrong amount: "
                f"{units_format(transfer.amount_units)}, but deposit {deposit.pk} is "
                f"for {deposit.amount_tzs:,} TZS."
            )
    else:
        transfer = _mint_log_plain(
            logs, deposit=deposit, tx_hash=tx_hash, elsewhere=elsewhere, token=token
        )
    holder = claim_holder(tx_hash=tx_hash, log_index=transfer.log_index)
    if holder is not None:
        raise SafeRecordRefused(
            f"The mint log {tx_hash}#{transfer.log_index} was already used "
            f"by {holder}; one mint log satisfies one thing."
        )
    try:
        head = client.confirmation_head()  # the safe head under MINT_CONFIRMATION_TAG=safe
        day = block_day(client, receipt["blockNumber"])
    except (OSError, Web3Exception) as exc:
        raise ChainUnavailable(f"the block could not be read ({type(exc).__name__})") from None
    return SafeMintEvidence(
        tx_hash=tx_hash,
        log_index=transfer.log_index,
        block_number=receipt["blockNumber"],
        block_day=day,
        confirmations=head - receipt["blockNumber"] + 1,
        with_ref=with_ref,
    )


def safe_mint_record(*, deposit_id, tx_hash: str, actor) -> str:
    """Record an executed Safe mint for a ``mint_requires_safe`` deposit. Returns ``minted``,
    or ``awaiting_confirmations`` (recorded later by ``safe_awaiting_recheck``)."""
    require_operator(actor, "record Safe mint transactions")
    tx_hash = tx_hash_normalise(tx_hash)
    deposit = deposit_get(deposit_id=deposit_id)
    # The chain proves the mint, but the owner of a deposit never acts on it (DESIGN §9).
    require_not_beneficiary(actor, deposit.user_id, doing=f"record the Safe mint of {deposit.pk}")
    _recordable_check(deposit)
    client = chain_client()
    try:
        evidence = _evidence_as_exported(client, deposit=deposit, tx_hash=tx_hash)
    except ChainError as exc:
        raise ChainReadRefused(f"The chain could not be read ({exc}); try again.") from None
    return _safe_mint_record_write(deposit_id=deposit.pk, evidence=evidence, actor=actor)


def _evidence_as_exported(
    client: NtzsClient, *, deposit: DepositRequest, tx_hash: str
) -> SafeMintEvidence:
    """The receipt checked the way the deposit's payloads were exported (latest first; the
    first that proves the mint wins), never by the policy of the day."""
    refusal: SafeRecordRefused | None = None
    for with_ref in exported_with_ref(deposit.pk, lambda: client):
        try:
            return safe_mint_evidence(client, deposit=deposit, tx_hash=tx_hash, with_ref=with_ref)
        except SafeRecordRefused as exc:
            refusal = refusal or exc
    raise refusal


def _recordable_check(deposit: DepositRequest) -> None:
    if deposit.status == S.MINTED:
        raise ConflictError(
            f"Deposit {deposit.pk} is already minted (transaction "
            f"{deposit.mint_tx_hash}); nothing to record."
        )
    if deposit.status != S.MINT_REQUIRES_SAFE:
        raise ConflictError(
            f"Deposit {deposit.pk} is {deposit.status}; a Safe mint is recorded "
            "only for a deposit in mint_requires_safe."
        )


def _safe_mint_transaction(deposit: DepositRequest) -> MintTransaction:
    mint = MintTransaction.objects.select_for_update().filter(deposit=deposit).first()
    if mint is not None:
        return mint
    return MintTransaction.objects.create(
        deposit=deposit,
        chain_id=settings.CHAIN_ID,
        contract_address=to_checksum_address(settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA),
        to_address=to_checksum_address(deposit.wallet.address),
        amount_units=tzs_to_units(deposit.amount_tzs),
        source=MintTransaction.Source.SAFE,
    )


@transaction.atomic(durable=True)
def _safe_mint_record_write(*, deposit_id: uuid.UUID, evidence: SafeMintEvidence, actor) -> str:
    deposit = deposit_get(deposit_id=deposit_id, for_update=True)
    _recordable_check(deposit)
    mint = _safe_mint_transaction(deposit)
    params = {
        "tx_hash": evidence.tx_hash,
        "log_index": evidence.log_index,
        "block_number": evidence.block_number,
        "confirmations": evidence.confirmations,
    }
    if evidence.confirmations < settings.MINT_CONFIRMATIONS:
        MintTransaction.objects.filter(pk=mint.pk).update(
            status=MT.AWAITING_CONFIRMATIONS,
            tx_hash=evidence.tx_hash,
            log_index=None,
            source=MintTransaction.Source.SAFE,
            uses_deposit_ref=evidence.with_ref,
            error="",
            updated_at=now(),
        )
        admin_action_record(
            actor=actor,
            action="safe.mint_record",
            target_type="deposit",
            target_id=deposit.pk,
            params=params,
            outcome="awaiting_confirmations",
        )
        logger.info(
            "Safe mint awaiting confirmations deposit=%s tx=%s (%s of %s)",
            deposit.pk,
            evidence.tx_hash,
            evidence.confirmations,
            settings.MINT_CONFIRMATIONS,
        )
        return "awaiting_confirmations"
    _record(mint, evidence, note=f"Safe mint recorded by {actor}")
    admin_action_record(
        actor=actor,
        action="safe.mint_record",
        target_type="deposit",
        target_id=deposit.pk,
        params=params,
        outcome="minted",
    )
    return "minted"


def _record(mint: MintTransaction, evidence: SafeMintEvidence, *, note: str) -> None:
    MintTransaction.objects.filter(pk=mint.pk).update(uses_deposit_ref=evidence.with_ref)
    recorded = record_minted(
        mint_id=mint.pk,
        tx_hash=evidence.tx_hash,
        log_index=evidence.log_index,
        block_day=evidence.block_day,
        source="safe",
        note=note,
        via_safe=True,
    )
    if not recorded:
        holder = claim_holder(tx_hash=evidence.tx_hash, log_index=evidence.log_index)
        raise SafeRecordRefused(
            f"The mint log {evidence.tx_hash}#{evidence.log_index} was "
            f"already used by {holder or 'another record'}; one mint log "
            "satisfies one thing."
        )
    logger.info("Safe mint confirmed deposit=%s tx=%s", mint.deposit_id, evidence.tx_hash)


def safe_mint_found_evidence(client: NtzsClient, *, deposit_id, tx_hash: str) -> SafeMintEvidence:
    """The §7.9 checks of a Safe transaction the reconciliation indexer found minting for an
    open ``mint_requires_safe`` deposit (nobody entered its hash), exactly as
    ``safe_mint_record`` checks a hash a person enters. SafeRecordRefused or ConflictError
    when it does not prove this deposit's mint."""
    deposit = deposit_get(deposit_id=deposit_id)
    _recordable_check(deposit)
    return _evidence_as_exported(client, deposit=deposit, tx_hash=tx_hash_normalise(tx_hash))


@transaction.atomic
def safe_mint_found_record(*, deposit_id, evidence: SafeMintEvidence, note: str) -> bool:
    """Record, with the system as actor (no AdminAction: no person acted), a Safe mint
    proven by ``safe_mint_found_evidence``, through the same write as ``confirm_mints``'
    recheck. False when the deposit left ``mint_requires_safe`` meanwhile or the mint is
    not deep enough yet; SafeRecordRefused when its log was claimed by something else."""
    deposit = deposit_get(deposit_id=deposit_id, for_update=True)
    if deposit.status != S.MINT_REQUIRES_SAFE:
        return False
    if evidence.confirmations < settings.MINT_CONFIRMATIONS:
        return False
    _record(_safe_mint_transaction(deposit), evidence, note=note)
    return True


def safe_awaiting_recheck(client: NtzsClient) -> int:
    """Called by the confirm runner before ``mints_confirm``: each Safe mint waiting for
    confirmations is checked again on the chain (the way it was recorded) and recorded once
    deep enough. A transaction the node no longer knows keeps
    waiting (a reorg usually brings it back; an operator may record the new hash); one that
    no longer proves the mint marks the mint transaction failed with the reason. Returns the
    number recorded."""
    waiting = list(
        MintTransaction.objects.filter(status=MT.AWAITING_CONFIRMATIONS)
        .select_related("deposit__wallet")
        .order_by("updated_at")
    )
    if not waiting:
        return 0
    if not settings.SAFE_ADDRESS:
        logger.warning(
            "%s Safe mint(s) await confirmations but SAFE_ADDRESS is not set", len(waiting)
        )
        return 0
    recorded = 0
    for mint in waiting:
        try:
            if mint.uses_deposit_ref is None:  # recorded before the method was stored
                evidence = _evidence_as_exported(client, deposit=mint.deposit, tx_hash=mint.tx_hash)
            else:
                evidence = safe_mint_evidence(
                    client,
                    deposit=mint.deposit,
                    tx_hash=mint.tx_hash,
                    with_ref=mint.uses_deposit_ref,
                )
        except SafeRecordRefused as exc:
            if client.receipt(mint.tx_hash) is None:
                logger.warning(
                    "Safe mint tx=%s of deposit=%s is not on chain (reorg?); still waiting",
                    mint.tx_hash,
                    mint.deposit_id,
                )
            else:
                _awaiting_fail(mint, str(exc))
            continue
        if evidence.confirmations < settings.MINT_CONFIRMATIONS:
            continue
        try:
            with transaction.atomic():
                _record(mint, evidence, note="Safe mint confirmed by confirm_mints")
        except SafeRecordRefused as exc:
            _awaiting_fail(mint, str(exc))
            continue
        recorded += 1
    return recorded


@transaction.atomic
def _awaiting_fail(mint: MintTransaction, reason: str) -> None:
    deposit_get(deposit_id=mint.deposit_id, for_update=True)
    failed = MintTransaction.objects.filter(pk=mint.pk, status=MT.AWAITING_CONFIRMATIONS).update(
        status=MT.FAILED, error=reason[:1000], updated_at=now()
    )
    if failed:
        logger.error("Safe mint of deposit=%s no longer proven: %s", mint.deposit_id, reason)
