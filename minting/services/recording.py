"""Recording a landed mint (DESIGN §7.3, §7.5, §7.8), shared by confirmation, the pipeline's
idempotency resolution, the Safe lane and the operator's retry: the expected ``Transfer`` of
a mint, one or many landed mints recorded, the proof that a mint is dead (or did land), the
"already minted" resolution of a deposit reference, and the UTC day of a block.

Chain facts are always recorded: a landed mint of a deposit is claimed and the deposit moved
to ``minted`` whatever its status (held, failed, routed to the Safe)."""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from eth_utils import to_checksum_address

from core.clock import now
from core.crashpoints import crash_point
from core.money import tzs_to_units, units_to_tzs
from core.services import alert_raise, alert_resolve
from deposits.exceptions import TransitionRefused
from deposits.models import DepositRequest
from deposits.services.transitions import deposit_mark_minted, deposits_mark_minted_batch
from minting.chain import (
    DEPOSIT_MINTED_TOPIC,
    ZERO_ADDRESS,
    DepositMintedLog,
    NtzsClient,
    TransferLog,
    hex_str,
    receipt_l1_fee,
    receipt_token_logs,
)
from minting.contract_artifact import deposit_ref
from minting.models import (
    MintAttempt,
    MintLogClaim,
    MintTransaction,
    SafeBatchExport,
    SignerAccount,
    TokenDeployment,
)
from minting.services.deposit_refs import signed_ref
from minting.services.ledger import ledger_issue_bulk, reservation_issue

logger = logging.getLogger("minting")
S = DepositRequest.Status
MT = MintTransaction.Status
AS = MintAttempt.Status
LIVE = (AS.SIGNED, AS.SENT)
MINTABLE_FROM = (S.MINT_PROCESSING, S.MINT_PENDING, S.MINT_FAILED, S.MINT_REQUIRES_SAFE)


def block_day(client: NtzsClient, block_number: int, cache: dict | None = None) -> dt.date:
    """The UTC day of a block (an unreserved mint counts on its block's day)."""
    if cache is not None and block_number in cache:
        return cache[block_number]
    timestamp = client.w3.eth.get_block(block_number)["timestamp"]
    day = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).date()
    if cache is not None:
        cache[block_number] = day
    return day


def attempts_cost_record(mined: list[tuple[object, dt.date]]) -> int:
    """What each of our mined transactions cost, from its receipt and its block's UTC day:
    gas used, effective gas price and the OP Stack's L1 data fee (``l1Fee``; 0 without one).
    Written once per attempt (a receipt of a transaction not of ours changes nothing).
    Returns how many attempts were written."""
    by_hash = {hex_str(receipt["transactionHash"]): (receipt, day) for receipt, day in mined}
    if not by_hash:
        return 0
    rows = list(MintAttempt.objects.filter(tx_hash__in=by_hash, gas_used__isnull=True))
    for row in rows:
        receipt, day = by_hash[row.tx_hash]
        row.gas_used = int(receipt["gasUsed"])
        row.effective_gas_price = int(receipt.get("effectiveGasPrice") or 0)
        row.l1_fee = receipt_l1_fee(receipt)
        row.mined_on = day
    MintAttempt.objects.bulk_update(
        rows, ["gas_used", "effective_gas_price", "l1_fee", "mined_on"], batch_size=500
    )
    return len(rows)


def expected_transfer(
    receipt, *, token: str, to_address: str, amount_units: int, ref: bytes | None
) -> TransferLog | None:
    """The Transfer-from-zero of this mint: exact amount, exact recipient, and — with deposit
    references — immediately followed by DepositMinted(ref)."""
    found = expected_transfers(
        receipt, token=token, to_address=to_address, amount_units=amount_units, ref=ref
    )
    return found[0] if found else None


def expected_transfers(
    receipt, *, token: str, to_address: str, amount_units: int, ref: bytes | None
) -> list[TransferLog]:
    """Every log of the receipt ``expected_transfer`` would accept, in log order (a Safe
    transaction may mint the same amount to one wallet for two deposits)."""
    logs = receipt_token_logs(receipt, token_address=token)
    to_address = to_checksum_address(to_address)
    found: list[TransferLog] = []
    for index, log in enumerate(logs):
        if not (
            isinstance(log, TransferLog)
            and log.from_address == ZERO_ADDRESS
            and log.to_address == to_address
            and log.amount_units == amount_units
        ):
            continue
        if ref is None:
            found.append(log)
            continue
        following = logs[index + 1] if index + 1 < len(logs) else None
        if (
            isinstance(following, DepositMintedLog)
            and following.deposit_ref == ref
            and following.log_index == log.log_index + 1
        ):
            found.append(log)
    return found


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
    actor=None,
) -> bool:
    """In one transaction: deposit compare-and-set first, then the log claim, the mint
    transaction, the attempt, and the reservation moved to issued. False if the log was
    already claimed by something else (nothing is changed then). ``actor``: the person the
    transition names, when one recorded it (a log attached under four eyes)."""
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
                actor=actor,
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
            unreserved_by_day[item.block_day] = unreserved_by_day.get(
                item.block_day, 0
            ) + units_to_tzs(mint.amount_units)
        mint.tx_hash, mint.log_index = item.tx_hash, item.log_index
        rows.append(mint)
    # What all rows share in one UPDATE; only the per-row hash and log index through
    # bulk_update (its CASE per field and row is CPU paid under the rows' locks).
    MintTransaction.objects.filter(pk__in=[m.pk for m in rows]).update(
        status=MT.MINTED,
        reserved_tzs=0,
        error="",
        updated_at=now(),
        source=MintTransaction.Source.WORKER,
    )
    MintTransaction.objects.bulk_update(rows, ["tx_hash", "log_index"], batch_size=500)
    MintAttempt.objects.filter(pk__in=[i.attempt_id for i in done], status__in=LIVE).update(
        status=AS.MINED_OK
    )
    ledger_issue_bulk(reserved_by_day, unreserved_by_day)
    crash_point("confirm_before_commit")
    for item in done:
        logger.info("Mint confirmed deposit=%s tx=%s", item.deposit_id, item.tx_hash)
    return [i for i in items if i not in done]


# --- Where log reads start ------------------------------------------------------------------

# A reorg can put a mint a few blocks below the head read before it was signed (the head was
# on a branch that lost): reads start this many blocks lower. Base's unsafe reorgs are
# shallower by far.
LOGS_REORG_MARGIN = 64


def deploy_block(contract_address: str = "") -> int:
    """NTZS_DEPLOY_BLOCK, else the block recorded by deploy_ntzs, else 0 (the whole chain:
    slow, never incomplete)."""
    if settings.NTZS_DEPLOY_BLOCK is not None:
        return settings.NTZS_DEPLOY_BLOCK
    address = contract_address or settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA
    deployment = (
        TokenDeployment.objects.filter(chain_id=settings.CHAIN_ID, contract_address__iexact=address)
        .order_by("deploy_block")
        .first()
    )
    return deployment.deploy_block if deployment else 0


def logs_from_block(deposit_id, *, contract_address: str = "") -> int:
    """The first block a read for this deposit's mint logs must cover: the lowest head
    recorded before anything of this system could mint it — its first signed attempt
    (``MintTransaction.logs_from_block``) and each Safe export
    (``SafeBatchExport.logs_from_block``) — less a reorg margin. Anything without a recorded
    head (made before heads were stored, or a mint of unknown origin) starts at the deploy
    block: a start too late could miss a mint and let a second one through."""
    floor = deploy_block(contract_address)
    heads: list[int | None] = []
    mint = MintTransaction.objects.filter(deposit_id=deposit_id).first()
    if mint is not None and (mint.attempt_count or mint.logs_from_block is not None):
        heads.append(mint.logs_from_block)
    heads += list(
        SafeBatchExport.objects.filter(deposits=deposit_id).values_list(
            "logs_from_block", flat=True
        )
    )
    if not heads or any(head is None for head in heads):
        return floor
    return max(min(heads) - LOGS_REORG_MARGIN, floor)


def final_enough(client: NtzsClient, block_number: int) -> bool:
    """Whether a mint in this block may be recorded: always under ``latest`` (depth is
    MINT_CONFIRMATIONS' business), only at or below the safe head under ``safe``."""
    if settings.MINT_CONFIRMATION_TAG != "safe":
        return True
    return block_number <= client.head("safe")


# --- Step 5: a reference already minted ----------------------------------------------------


def _deposit_minted_log(client: NtzsClient, ref: bytes, *, from_block: int):
    logs = client.logs_read(
        topics=[hex_str(DEPOSIT_MINTED_TOPIC), hex_str(ref)], from_block=from_block
    )
    return logs[0] if logs else None


def mint_resolve_already_minted(*, client: NtzsClient, deposit_id) -> int:
    """Claim the Transfer paired with DepositMinted(ref) and move the deposit to minted
    (``Mint already completed (idempotency)``). Returns 1 when recorded, 0 when it must wait
    (not found yet, not final yet); a log read that fails raises ChainUnavailable (the run
    is delayed, nothing is decided on a partial read)."""
    ref = deposit_ref(deposit_id)
    start = logs_from_block(deposit_id, contract_address=client.address)
    log = _deposit_minted_log(client, ref, from_block=start)
    floor = deploy_block(client.address)
    if log is None and start > floor:
        # Minted, but not by anything this system recorded a head for (another holder of
        # MINTER_ROLE): read the whole token history rather than wait for ever.
        log = _deposit_minted_log(client, ref, from_block=floor)
    if log is None:
        return 0
    deposit = DepositRequest.objects.select_related("wallet").get(pk=deposit_id)
    receipt = client.receipt(log["transactionHash"])
    if receipt is None:  # the log's transaction vanished meanwhile (a reorg): next run
        return 0
    if not final_enough(client, receipt["blockNumber"]):
        return 0
    transfer = expected_transfer(
        receipt,
        token=client.address,
        to_address=deposit.wallet.address,
        amount_units=tzs_to_units(deposit.amount_tzs),
        ref=ref,
    )
    if transfer is None:
        alert_raise(
            kind="deposit reference minted with other terms",
            key=str(deposit_id),
            deposit_id=deposit_id,
            detail=f"DepositMinted in {hex_str(log['transactionHash'])} does not match",
        )
        return 0
    mint, _ = MintTransaction.objects.get_or_create(
        deposit_id=deposit_id,
        defaults={
            "chain_id": settings.CHAIN_ID,
            "contract_address": client.address,
            "to_address": deposit.wallet.address,
            "amount_units": tzs_to_units(deposit.amount_tzs),
        },
    )
    tx_hash = hex_str(receipt["transactionHash"])
    day = block_day(client, receipt["blockNumber"])
    recorded = record_minted(
        mint_id=mint.pk,
        tx_hash=tx_hash,
        log_index=transfer.log_index,
        block_day=day,
        source="worker",
        note="Mint already completed (idempotency)",
    )
    attempts_cost_record([(receipt, day)])  # ours, when a worker crashed after sending it
    if recorded:
        logger.info("Mint already completed (idempotency) deposit=%s tx=%s", deposit_id, tx_hash)
    return int(recorded)


# --- Step 8: the proof a mint is dead ------------------------------------------------------


class Verdict(enum.StrEnum):
    DEAD = "dead"  # every attempt's nonce is mined and nothing minted the deposit
    MINTED = "minted"  # one of its attempts landed with the expected log
    REF_MINTED = "ref_minted"  # its deposit reference was minted by another transaction
    UNPROVEN = "unproven"  # an attempt can still land


@dataclass(frozen=True)
class Proof:
    verdict: Verdict
    reason: str = ""
    attempt: MintAttempt | None = None
    receipt: object = None
    transfer: TransferLog | None = None


def _signers_mined(client: NtzsClient, attempts: list[MintAttempt]):
    """Each attempt with the mined nonce of the key that signed it: after a key rotation a
    deposit's attempts may belong to the old key, whose nonces say nothing about the new
    one's (and the other way round). One read per distinct signer."""
    mined: dict[str, int] = {}
    for attempt in attempts:
        address = to_checksum_address(attempt.signer.address)
        if address not in mined:
            mined[address] = client.w3.eth.get_transaction_count(address, "latest")
        yield attempt, mined[address]


def mint_proof(client: NtzsClient, mint: MintTransaction) -> Proof:
    """Dead only when every attempt's nonce is mined, no mint/fee_bump attempt has a
    status-1 receipt carrying this deposit's expected log (a landed nonce_fill proves its
    nonce dead) and — for a mint signed with its deposit reference — that reference is not
    minted on chain. The expected log is the one the mint was signed for, never the
    current policy's."""
    attempts = list(mint.attempts.select_related("signer"))
    if any(a.nonce >= mined for a, mined in _signers_mined(client, attempts)):
        return Proof(Verdict.UNPROVEN, "an earlier transaction can still land")
    ref = signed_ref(mint)
    for attempt in attempts:
        if attempt.kind == MintAttempt.Kind.NONCE_FILL:
            continue
        receipt = client.receipt(attempt.tx_hash)
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
            if not final_enough(client, receipt["blockNumber"]):
                return Proof(Verdict.UNPROVEN, "its mint is not below the safe head yet")
            return Proof(Verdict.MINTED, attempt=attempt, receipt=receipt, transfer=transfer)
    if ref is not None and client.is_deposit_minted(ref):
        return Proof(Verdict.REF_MINTED, "the deposit's reference is already minted on chain")
    return Proof(Verdict.DEAD, "every attempt's nonce is mined and none minted")


def record_proven_mint(client: NtzsClient, mint: MintTransaction, proof: Proof, **extra) -> bool:
    """Record the landed attempt a ``MINTED`` proof found (and what it cost)."""
    day = block_day(client, proof.receipt["blockNumber"])
    recorded = record_minted(
        mint_id=mint.pk,
        tx_hash=hex_str(proof.receipt["transactionHash"]),
        log_index=proof.transfer.log_index,
        block_day=day,
        source="worker",
        attempt_id=proof.attempt.pk,
        **extra,
    )
    attempts_cost_record([(proof.receipt, day)])
    return recorded


# --- Finality: a recorded mint re-checked below the safe head ---------------------------------

# The four-eyes action (reconciliation) that records a deposit minted by a log already on
# chain: while one waits for its checker, nothing here may mint that deposit again.
MINT_LOG_ATTACH_ACTION = "reconciliation.attach_log"
NOT_ON_CHAIN = "Recorded mint no longer on chain"


class Finality(enum.StrEnum):
    FINAL = "final"  # found where it was recorded, at or below the safe head
    SUPERSEDED = "superseded"  # found at another log index: a superseding claim appended
    WAITING = "waiting"  # on chain, not yet below the safe head
    GONE = "gone"  # not on chain any more (or no longer carrying the mint log)
    STUCK = "stuck"  # found again, but its new log is claimed by something else


def claim_current(deposit_id) -> MintLogClaim | None:
    """The claim that counts for a deposit: the one no later claim supersedes."""
    return MintLogClaim.objects.filter(deposit_id=deposit_id, superseded_by__isnull=True).first()


@transaction.atomic
def claim_supersede(*, mint_id, tx_hash: str, log_index: int) -> bool:
    """Append a claim superseding the deposit's current one (claims are never edited) and
    point the mint transaction at it. False when the new log is claimed by something else."""
    # The mint row's lock serialises supersessions of its deposit's claims (the OneToOne
    # ``supersedes`` refuses a second successor of one claim anyway).
    mint = MintTransaction.objects.select_for_update().get(pk=mint_id)
    current = claim_current(mint.deposit_id)
    if current is not None and (current.tx_hash, current.log_index) == (tx_hash, log_index):
        return True
    try:
        with transaction.atomic():
            MintLogClaim.objects.create(
                chain_id=mint.chain_id,
                tx_hash=tx_hash,
                log_index=log_index,
                deposit_id=mint.deposit_id,
                supersedes=current,
            )
    except IntegrityError:
        return False
    MintTransaction.objects.filter(pk=mint.pk).update(
        tx_hash=tx_hash, log_index=log_index, updated_at=now()
    )
    logger.warning(
        "Recorded mint moved by a reorg deposit=%s tx=%s log %s -> %s",
        mint.deposit_id,
        tx_hash,
        current.log_index if current else None,
        log_index,
    )
    return True


def _sending_stop(reason: str) -> None:
    """Stop the worker signing (the ``minting_stop`` switch, without an actor: an operator
    checks and starts it again with ``minting_start``)."""
    SignerAccount.objects.filter(chain_id=settings.CHAIN_ID, sending_enabled=True).update(
        sending_enabled=False, disabled_reason=reason[:500], updated_at=now()
    )


def _mint_gone(mint: MintTransaction, why: str) -> Finality:
    detail = (
        f"deposit {mint.deposit_id}: {mint.tx_hash} {why}; rebroadcast the attempt's signed "
        "bytes (the raw transaction is kept on its MintAttempt)"
    )
    _, opened = alert_raise(
        kind=NOT_ON_CHAIN, key=str(mint.deposit_id), detail=detail, deposit_id=mint.deposit_id
    )
    _sending_stop(f"{NOT_ON_CHAIN}: deposit {mint.deposit_id} ({mint.tx_hash})")
    if opened:
        logger.error("%s deposit=%s tx=%s: %s", NOT_ON_CHAIN, mint.deposit_id, mint.tx_hash, why)
    return Finality.GONE


def _transfer_now(mint: MintTransaction, receipt) -> TransferLog | None:
    """The deposit's mint log in the receipt now: at its recorded index when that log still
    matches, else the first matching log no other record has claimed."""
    matches = expected_transfers(
        receipt,
        token=mint.contract_address,
        to_address=mint.to_address,
        amount_units=mint.amount_units,
        ref=signed_ref(mint),
    )
    for log in matches:
        if log.log_index == mint.log_index:
            return log
    for log in matches:
        holder = MintLogClaim.objects.filter(
            chain_id=mint.chain_id, tx_hash=mint.tx_hash, log_index=log.log_index
        ).first()
        if holder is None or holder.deposit_id == mint.deposit_id:
            return log
    return None


def mint_finality_check(mint: MintTransaction, *, receipt, safe_head: int) -> Finality:
    """One recorded mint against the chain now: gone (alert, sending stops), moved to
    another log index (a superseding claim), still above the safe head (wait), or final
    (marked checked). An alert resolves once the mint is final again."""
    if receipt is None:
        return _mint_gone(mint, "is unknown to the node")
    transfer = _transfer_now(mint, receipt) if receipt["status"] == 1 else None
    if transfer is None:
        return _mint_gone(mint, "no longer carries the deposit's mint log")
    if receipt["blockNumber"] > safe_head:
        return Finality.WAITING
    outcome = Finality.FINAL
    if transfer.log_index != mint.log_index:
        if not claim_supersede(mint_id=mint.pk, tx_hash=mint.tx_hash, log_index=transfer.log_index):
            alert_raise(
                kind=NOT_ON_CHAIN,
                key=str(mint.deposit_id),
                detail=f"{mint.tx_hash}#{transfer.log_index} is claimed by another record",
                deposit_id=mint.deposit_id,
            )
            return Finality.STUCK
        outcome = Finality.SUPERSEDED
    MintTransaction.objects.filter(pk=mint.pk, status=MT.MINTED).update(finality_checked_at=now())
    alert_resolve(kind=NOT_ON_CHAIN, key=str(mint.deposit_id))
    return outcome
