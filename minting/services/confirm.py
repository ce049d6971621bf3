"""Steps 3–5 and 8 of DESIGN §7: receipts and confirmation, recovery of unsent and stuck
attempts, on-chain idempotency, and the proof a mint is dead before anything is failed.

Chain facts are always recorded: a landed mint of a deposit is claimed and the deposit moved
to ``minted`` whatever its status (held, failed, routed to the Safe)."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from eth_utils import to_checksum_address
from web3.exceptions import TransactionNotFound

from core.clock import now
from core.crashpoints import crash_point
from core.services import alert_raise
from deposits.exceptions import TransitionRefused
from deposits.models import DepositRequest
from deposits.services.transitions import (
    deposit_back_to_pending,
    deposit_mark_failed,
    deposit_mark_minted,
    deposits_mark_minted_batch,
)
from minting.chain import (
    DEPOSIT_MINTED_TOPIC,
    ZERO_ADDRESS,
    ChainUnavailable,
    DepositMintedLog,
    NtzsClient,
    TransferLog,
    account_address,
    receipt_token_logs,
)
from minting.contract_artifact import deposit_ref
from minting.models import MintAttempt, MintLogClaim, MintTransaction, SignerAccount
from minting.services.ledger import ledger_issue_bulk, reservation_issue, reservation_release
from minting.services.pipeline import attempt_send, next_base_fee
from minting.signing import FILL_GAS_LIMIT, Fees, fees_from, mint_calldata, mint_gas_limit, sign

logger = logging.getLogger("minting")
S = DepositRequest.Status
MT = MintTransaction.Status
AS = MintAttempt.Status
LIVE = (AS.SIGNED, AS.SENT)
MINTABLE_FROM = (S.MINT_PROCESSING, S.MINT_PENDING, S.MINT_FAILED, S.MINT_REQUIRES_SAFE)
REBROADCAST_AFTER = dt.timedelta(seconds=4)  # ~2 Base blocks
REPLACED_AFTER = dt.timedelta(seconds=30)


def _hex(value) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _block_day(client: NtzsClient, block_number: int, cache: dict | None = None) -> dt.date:
    if cache is not None and block_number in cache:
        return cache[block_number]
    timestamp = client.w3.eth.get_block(block_number)["timestamp"]
    day = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).date()
    if cache is not None:
        cache[block_number] = day
    return day


def expected_transfer(
    receipt, *, token: str, to_address: str, amount_units: int, ref: bytes | None
) -> TransferLog | None:
    """The Transfer-from-zero of this mint: exact amount, exact recipient, and — with deposit
    references — immediately followed by DepositMinted(ref)."""
    logs = receipt_token_logs(receipt, token_address=token)
    to_address = to_checksum_address(to_address)
    for index, log in enumerate(logs):
        if not (
            isinstance(log, TransferLog)
            and log.from_address == ZERO_ADDRESS
            and log.to_address == to_address
            and log.amount_units == amount_units
        ):
            continue
        if ref is None:
            return log
        following = logs[index + 1] if index + 1 < len(logs) else None
        if (
            isinstance(following, DepositMintedLog)
            and following.deposit_ref == ref
            and following.log_index == log.log_index + 1
        ):
            return log
    return None


@transaction.atomic
def record_minted(
    *,
    mint_id,
    tx_hash: str,
    log_index: int,
    block_day: dt.date,
    source: str,
    note: str = "",
    attempt_id=None,
    via_safe: bool = False,
) -> bool:
    """In one transaction: deposit compare-and-set first, then the log claim, the mint
    transaction, the attempt, and the reservation moved to issued. False if the log was
    already claimed by something else (nothing is changed then)."""
    mint = MintTransaction.objects.select_for_update().select_related("deposit").get(pk=mint_id)
    if mint.status == MT.MINTED:
        return False  # another worker recorded it a moment ago
    try:
        with transaction.atomic():
            deposit_mark_minted(
                deposit_id=mint.deposit_id,
                tx_hash=tx_hash,
                source=source,
                allowed=MINTABLE_FROM,
                note=note,
            )
            MintLogClaim.objects.create(
                chain_id=mint.chain_id,
                tx_hash=tx_hash,
                log_index=log_index,
                deposit_id=mint.deposit_id,
            )
    except (IntegrityError, TransitionRefused) as exc:
        logger.error(
            "mint log %s#%s not recorded for deposit=%s: %s",
            tx_hash,
            log_index,
            mint.deposit_id,
            exc,
        )
        return False
    MintTransaction.objects.filter(pk=mint.pk).update(
        status=MT.MINTED,
        tx_hash=tx_hash,
        log_index=log_index,
        error="",
        source=MintTransaction.Source.SAFE if via_safe else MintTransaction.Source.WORKER,
        updated_at=now(),
    )
    if attempt_id is not None:
        MintAttempt.objects.filter(pk=attempt_id, status__in=LIVE).update(status=AS.MINED_OK)
    # Found by another path (idempotency while a worker's own attempt was landing): the
    # attempt whose hash counted is the one that mined.
    MintAttempt.objects.filter(mint_transaction=mint, tx_hash=tx_hash, status__in=LIVE).update(
        status=AS.MINED_OK
    )
    reservation_issue(mint, block_day=block_day, via_safe=via_safe)
    crash_point("confirm_before_commit")
    return True


def _with_ref(client: NtzsClient) -> bool:
    stated = settings.NTZS_MINT_WITH_REF
    return client.supports_deposit_ref if stated is None else stated


def _ref_for(client: NtzsClient, mint: MintTransaction) -> bytes | None:
    uses_ref = mint.uses_deposit_ref if mint.uses_deposit_ref is not None else _with_ref(client)
    return deposit_ref(mint.deposit_id) if uses_ref else None


# --- Step 5: a reference already minted ----------------------------------------------------


def _deposit_minted_log(client: NtzsClient, ref: bytes):
    logs = client.w3.eth.get_logs(
        {
            "address": client.address,
            "fromBlock": settings.NTZS_DEPLOY_BLOCK or 0,
            "toBlock": "latest",
            "topics": [_hex(DEPOSIT_MINTED_TOPIC), _hex(ref)],
        }
    )
    return logs[0] if logs else None


def mint_resolve_already_minted(*, client: NtzsClient, deposit_id) -> int:
    """Claim the Transfer paired with DepositMinted(ref) and move the deposit to minted
    (``Mint already completed (idempotency)``). Returns 1 when recorded."""
    ref = deposit_ref(deposit_id)
    log = _deposit_minted_log(client, ref)
    if log is None:
        return 0
    deposit = DepositRequest.objects.select_related("wallet").get(pk=deposit_id)
    receipt = client.w3.eth.get_transaction_receipt(log["transactionHash"])
    transfer = expected_transfer(
        receipt,
        token=client.address,
        to_address=deposit.wallet.address,
        amount_units=deposit.amount_tzs * 10**18,
        ref=ref,
    )
    if transfer is None:
        alert_raise(
            kind="deposit reference minted with other terms",
            key=str(deposit_id),
            detail=f"DepositMinted in {_hex(log['transactionHash'])} does not match",
        )
        return 0
    mint, _ = MintTransaction.objects.get_or_create(
        deposit_id=deposit_id,
        defaults={
            "chain_id": settings.CHAIN_ID,
            "contract_address": client.address,
            "to_address": deposit.wallet.address,
            "amount_units": deposit.amount_tzs * 10**18,
        },
    )
    recorded = record_minted(
        mint_id=mint.pk,
        tx_hash=_hex(receipt["transactionHash"]),
        log_index=transfer.log_index,
        block_day=_block_day(client, receipt["blockNumber"]),
        source="worker",
        note="Mint already completed (idempotency)",
    )
    if recorded:
        logger.info(
            "Mint already completed (idempotency) deposit=%s tx=%s",
            deposit_id,
            _hex(receipt["transactionHash"]),
        )
    return int(recorded)


# --- Step 8: the proof a mint is dead ------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    verdict: str  # "dead" | "minted" | "unproven"
    reason: str = ""
    attempt: MintAttempt | None = None
    receipt: object = None
    transfer: TransferLog | None = None


def mint_proof(client: NtzsClient, mint: MintTransaction) -> Proof:
    """Dead only when every attempt's nonce is mined and no mint/fee_bump attempt has a
    status-1 receipt carrying this deposit's expected log (a landed nonce_fill proves its
    nonce dead). If an attempt did mint, say so."""
    attempts = list(mint.attempts.all())
    minter = account_address(settings.MINTER_PRIVATE_KEY)
    mined = client.w3.eth.get_transaction_count(minter, "latest")
    if any(a.nonce >= mined for a in attempts):
        return Proof("unproven", "an earlier transaction can still land")
    ref = _ref_for(client, mint)
    for attempt in attempts:
        if attempt.kind == MintAttempt.Kind.NONCE_FILL:
            continue
        receipt = _receipt_or_none(client, attempt.tx_hash)
        if receipt is None or receipt["status"] != 1:
            continue
        transfer = expected_transfer(
            receipt,
            token=mint.contract_address,
            to_address=mint.to_address,
            amount_units=mint.amount_units,
            ref=ref,
        )
        if transfer is not None:
            return Proof("minted", attempt=attempt, receipt=receipt, transfer=transfer)
    return Proof("dead", "every attempt's nonce is mined and none minted")


def _receipt_or_none(client: NtzsClient, tx_hash: str):
    try:
        return client.w3.eth.get_transaction_receipt(tx_hash)
    except (TransactionNotFound, ValueError, LookupError):
        return None
    except OSError as exc:
        raise ChainUnavailable(f"receipt read failed ({type(exc).__name__})") from None


@transaction.atomic
def _record_failed(mint_id, reason: str) -> bool:
    mint = MintTransaction.objects.select_for_update().get(pk=mint_id)
    try:
        deposit_mark_failed(deposit_id=mint.deposit_id, reason=reason)
    except TransitionRefused:
        return False
    MintTransaction.objects.filter(pk=mint.pk).update(
        status=MT.FAILED, error=reason[:1000], updated_at=now()
    )
    reservation_release(mint)
    logger.error("Mint failed deposit=%s reason=%s", mint.deposit_id, reason)
    return True


def mint_settle(client: NtzsClient, mint: MintTransaction) -> str:
    """A mint whose attempts are all terminal: minted (its log found) or failed (proven)."""
    proof = mint_proof(client, mint)
    if proof.verdict == "minted":
        recorded = record_minted(
            mint_id=mint.pk,
            tx_hash=_hex(proof.receipt["transactionHash"]),
            log_index=proof.transfer.log_index,
            block_day=_block_day(client, proof.receipt["blockNumber"]),
            source="worker",
            attempt_id=proof.attempt.pk,
        )
        return "minted" if recorded else "unrecorded"
    if proof.verdict == "dead":
        if _with_ref(client) and client.is_deposit_minted(deposit_ref(mint.deposit_id)):
            return (
                "minted"
                if mint_resolve_already_minted(client=client, deposit_id=mint.deposit_id)
                else "?"
            )
        last_error = mint.attempts.exclude(error="").order_by("-created_at").first()
        reason = last_error.error if last_error else "reverted on chain"
        return "failed" if _record_failed(mint.pk, reason) else "unchanged"
    return "waiting"


# --- Step 3 and 4: confirm and recover -------------------------------------------------------


def _receipts(client: NtzsClient, attempts: list[MintAttempt]) -> dict[str, object]:
    """Receipts of many attempts in one JSON-RPC batch; a batch with a missing receipt
    (a replaced attempt) falls back to one call per attempt."""
    if not attempts:
        return {}
    try:
        with client.w3.batch_requests() as batch:
            for attempt in attempts:
                batch.add(client.w3.eth.get_transaction_receipt(attempt.tx_hash))
            answers = batch.execute()
    except TransactionNotFound:
        return {a.tx_hash: _receipt_or_none(client, a.tx_hash) for a in attempts}
    except OSError as exc:
        raise ChainUnavailable(f"receipt batch failed ({type(exc).__name__})") from None
    return dict(zip((a.tx_hash for a in attempts), answers, strict=True))


@dataclass(frozen=True)
class Landed:
    mint_id: object
    deposit_id: object
    attempt_id: object
    tx_hash: str
    log_index: int
    block_day: dt.date


@transaction.atomic
def record_minted_many(items: list[Landed]) -> list[Landed]:
    """The worker's confirmations of one run in one transaction: the batch transition, the
    log claims, the mint rows, the attempts and the reservations per day. Returns what it
    could not record this way (another status, a claimed log): the caller records those one
    by one through ``record_minted``."""
    if not items:
        return []
    by_mint = {item.mint_id: item for item in items}
    mints = {
        m.pk: m
        for m in MintTransaction.objects.select_for_update().filter(
            pk__in=by_mint, status__in=(MT.SIGNED, MT.SENT)
        )
    }
    claimed = set(
        MintLogClaim.objects.filter(
            chain_id=settings.CHAIN_ID, tx_hash__in={i.tx_hash for i in items}
        ).values_list("tx_hash", "log_index")
    )
    ready = [i for i in items if i.mint_id in mints and (i.tx_hash, i.log_index) not in claimed]
    moved = set(
        deposits_mark_minted_batch(minted={i.deposit_id: i.tx_hash for i in ready}, minted_at=now())
    )
    done = [i for i in ready if i.deposit_id in moved]
    MintLogClaim.objects.bulk_create(
        [
            MintLogClaim(
                chain_id=settings.CHAIN_ID,
                tx_hash=i.tx_hash,
                log_index=i.log_index,
                deposit_id=i.deposit_id,
            )
            for i in done
        ]
    )
    rows = []
    reserved_by_day: dict[dt.date, int] = {}
    unreserved_by_day: dict[dt.date, int] = {}
    for item in done:
        mint = mints[item.mint_id]
        if mint.reserved_tzs and mint.reserved_day:
            reserved_by_day[mint.reserved_day] = (
                reserved_by_day.get(mint.reserved_day, 0) + mint.reserved_tzs
            )
        else:
            unreserved_by_day[item.block_day] = (
                unreserved_by_day.get(item.block_day, 0) + mint.amount_units // 10**18
            )
        mint.status, mint.tx_hash, mint.log_index = MT.MINTED, item.tx_hash, item.log_index
        mint.reserved_tzs, mint.error, mint.updated_at = 0, "", now()
        mint.source = MintTransaction.Source.WORKER
        rows.append(mint)
    MintTransaction.objects.bulk_update(
        rows,
        ["status", "tx_hash", "log_index", "reserved_tzs", "error", "updated_at", "source"],
        batch_size=500,
    )
    MintAttempt.objects.filter(pk__in=[i.attempt_id for i in done], status__in=LIVE).update(
        status=AS.MINED_OK
    )
    ledger_issue_bulk(reserved_by_day, unreserved_by_day)
    crash_point("confirm_before_commit")
    for item in done:
        logger.info("Mint confirmed deposit=%s tx=%s", item.deposit_id, item.tx_hash)
    return [i for i in items if i not in done]


def _mined_attempt(
    client: NtzsClient, attempt: MintAttempt, receipt, head: int, landed: list[Landed], blocks: dict
) -> str:
    if head - receipt["blockNumber"] + 1 < settings.MINT_CONFIRMATIONS:
        return "confirming"
    mint = attempt.mint_transaction
    if receipt["status"] != 1:
        MintAttempt.objects.filter(pk=attempt.pk, status__in=LIVE).update(
            status=AS.MINED_REVERTED, error="reverted on chain"
        )
        return "reverted"
    if attempt.kind == MintAttempt.Kind.NONCE_FILL or mint is None:
        MintAttempt.objects.filter(pk=attempt.pk, status__in=LIVE).update(status=AS.MINED_OK)
        return "filled"
    transfer = expected_transfer(
        receipt,
        token=mint.contract_address,
        to_address=mint.to_address,
        amount_units=mint.amount_units,
        ref=_ref_for(client, mint),
    )
    if transfer is None:
        MintAttempt.objects.filter(pk=attempt.pk, status__in=LIVE).update(
            status=AS.MINED_OK, error="mined without this deposit's mint log"
        )
        return "no_log"
    landed.append(
        Landed(
            mint_id=mint.pk,
            deposit_id=mint.deposit_id,
            attempt_id=attempt.pk,
            tx_hash=attempt.tx_hash,
            log_index=transfer.log_index,
            block_day=_block_day(client, receipt["blockNumber"], blocks),
        )
    )
    return "minted"


UNDERPRICED = (
    "underpriced",
    "below base fee",
    "less than block base fee",
    "max fee per gas less than",
)
INCURABLE = (
    "intrinsic gas too low",
    "exceeds block gas limit",
    "gas limit reached",
    "invalid transaction",
    "rlp",
    "malformed",
    "oversized data",
)


def _send_error_kind(outcome: str) -> str:
    message = outcome.lower()
    if any(marker in message for marker in UNDERPRICED):
        return "underpriced"
    if any(marker in message for marker in INCURABLE):
        return "incurable"
    return "other"


def _unrecordable(item) -> None:
    """A landed mint that cannot be recorded (its log claimed by something else, or the
    deposit in a status that cannot become minted): a person must look. The attempt is
    terminal, so it no longer blocks the nonce checks."""
    alert_raise(
        kind="mint landed but not recorded",
        key=item.tx_hash,
        detail=f"deposit {item.deposit_id} log {item.tx_hash}#{item.log_index}",
    )
    MintAttempt.objects.filter(pk=item.attempt_id, status__in=LIVE).update(
        status=AS.MINED_OK, error="landed but not recorded: see the alert"
    )


def _recover_unmined(client: NtzsClient, attempts: list[MintAttempt]) -> str:
    """Only the latest attempt at an unmined nonce is acted on: an unsent one (a crash after
    commit) is sent; a sent one the node no longer knows, older than ~2 blocks, is sent
    again (the same bytes); one pending longer than MINT_FEE_BUMP_AFTER_S is bumped."""
    latest = max(attempts, key=lambda a: a.created_at)
    if latest.status == AS.SIGNED:
        logger.info(
            "Found existing txHash, checking receipt tx=%s (signed, not sent)", latest.tx_hash
        )
        return _after_send(client, latest, attempt_send(client, latest))
    age = now() - (latest.sent_at or latest.created_at)
    if age < REBROADCAST_AFTER:
        return "recent"
    if _known(client, latest):
        if age >= dt.timedelta(seconds=settings.MINT_FEE_BUMP_AFTER_S):
            return _replace(client, latest, kind=MintAttempt.Kind.FEE_BUMP)
        return "pending"
    logger.info(
        "Found existing txHash, checking receipt tx=%s (unknown to the node: rebroadcast)",
        latest.tx_hash,
    )
    return _after_send(client, latest, attempt_send(client, latest))


def _after_send(client: NtzsClient, attempt: MintAttempt, outcome: str) -> str:
    """A refusal fees can cure gets a bump at once (a priced-out transaction may have been
    evicted); one they cannot cure marks the attempt rejected and fills its nonce."""
    if not outcome.startswith("error:"):
        return outcome
    MintAttempt.objects.filter(pk=attempt.pk).update(error=outcome[6:][:1000])
    kind = _send_error_kind(outcome)
    if kind == "underpriced":
        return _replace(client, attempt, kind=MintAttempt.Kind.FEE_BUMP)
    if kind == "incurable":
        MintAttempt.objects.filter(pk=attempt.pk, status__in=LIVE).update(status=AS.REJECTED)
        logger.error(
            "mint attempt %s refused for good (%s): filling nonce %s",
            attempt.tx_hash,
            outcome[6:],
            attempt.nonce,
        )
        return _replace(client, attempt, kind=MintAttempt.Kind.NONCE_FILL)
    return "send_error"


def _replacement_tx(
    attempt: MintAttempt, mint: MintTransaction | None, kind: str, ref: bytes | None
) -> dict:
    if kind == MintAttempt.Kind.NONCE_FILL or mint is None:
        return {"to": attempt.signer.address, "data": b"", "gas": FILL_GAS_LIMIT}
    return {
        "to": mint.contract_address,
        "gas": mint_gas_limit(),
        "data": mint_calldata(to=mint.to_address, amount_units=mint.amount_units, deposit_ref=ref),
    }


def _replace(client: NtzsClient, attempt: MintAttempt, *, kind: str) -> str:
    """A fee bump or a nonce fill, made like a batch: row locked, signed, inserted,
    committed — then sent."""
    base_fee = next_base_fee(client)
    ref = _ref_for(client, attempt.mint_transaction) if attempt.mint_transaction else None
    with transaction.atomic():
        if attempt.mint_transaction_id:
            mint = MintTransaction.objects.select_for_update().get(pk=attempt.mint_transaction_id)
        else:
            SignerAccount.objects.select_for_update().get(pk=attempt.signer_id)
            mint = None
        newest = (
            MintAttempt.objects.filter(signer_id=attempt.signer_id, nonce=attempt.nonce)
            .order_by("-created_at")
            .first()
        )
        if newest.pk != attempt.pk and newest.status in LIVE:
            return "already_replaced"  # another worker bumped it a moment ago
        fees = Fees(int(attempt.max_fee_per_gas), int(attempt.max_priority_fee_per_gas)).bumped(
            base_fee=base_fee
        )
        tx = _replacement_tx(attempt, mint, kind, ref)
        signed = sign(
            private_key=settings.MINTER_PRIVATE_KEY,
            chain_id=settings.CHAIN_ID,
            nonce=attempt.nonce,
            fees=fees,
            **tx,
        )
        replacement = MintAttempt.objects.create(
            mint_transaction=mint,
            signer_id=attempt.signer_id,
            nonce=attempt.nonce,
            tx_hash=signed.tx_hash,
            raw_tx=signed.raw_hex,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
            gas_limit=tx["gas"],
            kind=kind,
        )
        if mint is not None:
            MintTransaction.objects.filter(pk=mint.pk).update(
                attempt_count=mint.attempt_count + 1, updated_at=now()
            )
    crash_point("replacement_before_send")
    logger.warning(
        "%s at nonce %s: %s replaces %s", kind, attempt.nonce, signed.tx_hash, attempt.tx_hash
    )
    outcome = attempt_send(client, replacement)
    if outcome.startswith("error:"):  # handled by the next run, never in a loop here
        MintAttempt.objects.filter(pk=replacement.pk).update(error=outcome[6:][:1000])
        return f"{kind}_refused"
    return kind


def _known(client: NtzsClient, attempt: MintAttempt) -> bool:
    try:
        return client.w3.eth.get_transaction(attempt.tx_hash) is not None
    except (TransactionNotFound, ValueError, LookupError):
        return False


def _replace_losers(attempts: list[MintAttempt], winner: MintAttempt | None) -> None:
    losers = [a.pk for a in attempts if winner is None or a.pk != winner.pk]
    MintAttempt.objects.filter(pk__in=losers, status__in=LIVE).update(status=AS.REPLACED)


def _settle_finished_mints(client: NtzsClient) -> dict[str, int]:
    counts: dict[str, int] = {}
    waiting = (
        MintTransaction.objects.filter(status__in=(MT.SIGNED, MT.SENT))
        .exclude(attempts__status__in=LIVE)
        .select_related("deposit")
    )
    for mint in waiting:
        outcome = mint_settle(client, mint)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def claim_lease_sweep() -> int:
    """Defensive: a claimed deposit with no attempt after MINT_CLAIM_LEASE_S goes back to
    mint_pending and its reservation is released (step 1 makes this unreachable)."""
    cutoff = now() - dt.timedelta(seconds=settings.MINT_CLAIM_LEASE_S)
    stale = (
        DepositRequest.objects.filter(status=S.MINT_PROCESSING, updated_at__lt=cutoff)
        .exclude(mint_transaction__attempts__isnull=False)
        .values_list("pk", flat=True)
    )
    swept = 0
    for deposit_id in stale:
        with transaction.atomic():
            mint = MintTransaction.objects.select_for_update().filter(deposit_id=deposit_id).first()
            try:
                deposit_back_to_pending(deposit_id=deposit_id)
            except TransitionRefused:
                continue
            if mint is not None:
                reservation_release(mint)
                MintTransaction.objects.filter(pk=mint.pk).update(status=MT.PENDING)
            swept += 1
    return swept


def _ledger_against_chain(client: NtzsClient, signer: SignerAccount, minter: str) -> str:
    """With nothing in flight, the chain's pending count must equal the ledger. Below it,
    the gap is filled; above it, a transaction was made outside this system with our key:
    alert, stop sending, and wait for an operator (``minting_start`` resyncs).

    The chain is read first, then the ledger is locked and re-checked, so a batch committing
    or sending meanwhile is never mistaken for a gap or an outside transaction."""
    if MintAttempt.objects.filter(signer=signer, status__in=LIVE).exists():
        return ""
    pending = client.w3.eth.get_transaction_count(minter, "pending")
    fills: list[MintAttempt] = []
    with transaction.atomic():
        locked = SignerAccount.objects.select_for_update().get(pk=signer.pk)
        if MintAttempt.objects.filter(signer=signer, status__in=LIVE).exists():
            return ""
        if pending > locked.next_nonce:
            logger.error(
                "Minter nonce used outside the system: chain pending nonce %s, ledger %s",
                pending,
                locked.next_nonce,
            )
            alert_raise(
                kind="minter nonce used outside the system",
                key=minter,
                detail=f"chain pending nonce {pending} > ledger {locked.next_nonce}",
            )
            SignerAccount.objects.filter(pk=locked.pk).update(
                sending_enabled=False,
                disabled_reason="minter nonce used outside the system: "
                "check the key, then minting_start to resync",
                updated_at=now(),
            )
            return "outside_nonce"
        if pending < locked.next_nonce:
            fills = [
                _gap_fill_attempt(client, locked, nonce)
                for nonce in range(pending, locked.next_nonce)
                if not MintAttempt.objects.filter(
                    signer=locked, nonce=nonce, status__in=LIVE
                ).exists()
            ]
    for fill in fills:  # committed, then sent
        logger.warning("gap at nonce %s filled by %s", fill.nonce, fill.tx_hash)
        attempt_send(client, fill)
    return "gap_filled" if fills else ""


def _gap_fill_attempt(client: NtzsClient, signer: SignerAccount, nonce: int) -> MintAttempt:
    fees = fees_from(base_fee=next_base_fee(client), tip=client.w3.eth.max_priority_fee)
    signed = sign(
        private_key=settings.MINTER_PRIVATE_KEY,
        chain_id=settings.CHAIN_ID,
        nonce=nonce,
        to=signer.address,
        data=b"",
        gas=FILL_GAS_LIMIT,
        fees=fees,
    )
    return MintAttempt.objects.create(
        signer=signer,
        nonce=nonce,
        tx_hash=signed.tx_hash,
        raw_tx=signed.raw_hex,
        max_fee_per_gas=fees.max_fee_per_gas,
        max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        gas_limit=FILL_GAS_LIMIT,
        kind=MintAttempt.Kind.NONCE_FILL,
    )


def mints_confirm(*, client_factory, limit: int = 2000) -> dict[str, int]:
    """One confirm run: receipts of live attempts at mined nonces, recovery of the others,
    settlement of mints whose attempts are all terminal, and the lease sweep."""
    client = client_factory()
    minter = account_address(settings.MINTER_PRIVATE_KEY)
    signer = SignerAccount.objects.filter(address=minter, chain_id=settings.CHAIN_ID).first()
    counts: dict[str, int] = {}
    from minting.services.safe import safe_awaiting_recheck  # the Safe lane's confirmations

    recorded_safe = safe_awaiting_recheck(client)
    if recorded_safe:
        counts["safe_recorded"] = recorded_safe
    if signer is None:
        return counts
    head = client.w3.eth.block_number
    mined = client.w3.eth.get_transaction_count(minter, "latest")
    SignerAccount.objects.filter(pk=signer.pk, last_mined_nonce__lt=mined).update(
        last_mined_nonce=mined
    )
    live = list(
        MintAttempt.objects.filter(signer=signer, status__in=LIVE)
        .select_related("mint_transaction")
        .order_by("nonce", "created_at")[:limit]
    )
    receipts = _receipts(client, [a for a in live if a.nonce < mined])
    landed: list[Landed] = []
    blocks: dict[int, dt.date] = {}
    for nonce, group in itertools.groupby(live, key=lambda a: a.nonce):
        attempts = list(group)
        if nonce >= mined:
            outcome = _recover_unmined(client, attempts)
        else:
            found = next(
                ((a, receipts[a.tx_hash]) for a in attempts if receipts.get(a.tx_hash)), None
            )
            if found is None:
                # The nonce is mined but none of our attempts has a receipt. A node may count
                # the nonce a moment before it serves the receipt, so only an old attempt is
                # declared replaced (by a transaction not of this system, or a lost one).
                newest = max(a.sent_at or a.created_at for a in attempts)
                if now() - newest > REPLACED_AFTER:
                    _replace_losers(attempts, None)
                    outcome = "replaced"
                else:
                    outcome = "awaiting_receipt"
            else:
                outcome = _mined_attempt(client, found[0], found[1], head, landed, blocks)
                if outcome != "confirming":
                    _replace_losers(attempts, found[0])
        counts[outcome] = counts.get(outcome, 0) + 1
    for item in record_minted_many(landed):  # the rest, one by one (held, failed, routed)
        if record_minted(
            mint_id=item.mint_id,
            tx_hash=item.tx_hash,
            log_index=item.log_index,
            block_day=item.block_day,
            source="worker",
            attempt_id=item.attempt_id,
        ):
            logger.info("Mint confirmed deposit=%s tx=%s", item.deposit_id, item.tx_hash)
        elif MintTransaction.objects.filter(pk=item.mint_id).exclude(status=MT.MINTED).exists():
            _unrecordable(item)
    for outcome, count in _settle_finished_mints(client).items():
        counts[outcome] = counts.get(outcome, 0) + count
    nonce_check = _ledger_against_chain(client, signer, minter)
    if nonce_check:
        counts[nonce_check] = 1
    swept = claim_lease_sweep()
    if swept:
        counts["lease_swept"] = swept
    return counts
