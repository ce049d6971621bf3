"""Steps 3, 4 and 8 of DESIGN §7 for the worker's own transactions: one confirm run, in named
steps the runner calls in this order (each callable alone, as its tests do):

1. ``signer_nonce_sync`` — the freshly mined nonce (the proof that an attempt is dead needs
   it, so it runs before settling);
2. ``mints_mined_confirm`` — receipts of live attempts at mined nonces, landed mints recorded;
3. ``mints_unmined_recover`` — unsent attempts sent, dropped ones rebroadcast, stuck ones
   bumped, refused ones filled;
4. ``mints_finished_settle`` — a mint whose attempts are all terminal: minted or proven dead;
5. ``signer_ledger_check`` — with nothing in flight, the chain's pending count against the
   ledger (gap filled, or a transaction made outside the system stops sending);
6. ``claim_lease_sweep`` — a claim without an attempt goes back to ``mint_pending``;
7. ``mints_finality_check`` — recorded mints re-checked once the ``safe`` head passes them
   (called by the runner after the Safe lane and this run, so it covers both lanes).

Recording lives in ``recording``, sending in ``sending``: this module only decides."""

from __future__ import annotations

import datetime as dt
import itertools
import logging

from django.conf import settings
from django.db import transaction
from web3.exceptions import TransactionNotFound

from core.clock import now
from core.crashpoints import crash_point
from core.services import alert_raise, alert_resolve
from deposits.exceptions import TransitionRefused
from deposits.models import DepositRequest
from deposits.services.transitions import deposit_back_to_pending, deposit_mark_failed
from minting.chain import NtzsClient
from minting.models import MintAttempt, MintTransaction, SignerAccount
from minting.services.deposit_refs import signed_ref
from minting.services.ledger import minter_signer, reservation_release
from minting.services.recording import (
    Finality,
    Landed,
    Verdict,
    attempts_cost_record,
    block_day,
    expected_transfer,
    mint_finality_check,
    mint_proof,
    mint_resolve_already_minted,
    record_minted,
    record_minted_many,
    record_proven_mint,
)
from minting.services.sending import (
    FEE_CAP_ALERT,
    Refusal,
    SendOutcome,
    Sent,
    attempt_error_record,
    attempt_send,
    next_base_fee,
)
from minting.signing import (
    FILL_GAS_LIMIT,
    Fees,
    fees_bumped,
    fees_quote,
    mint_calldata,
    mint_gas_limit,
    sign,
)

logger = logging.getLogger("minting")
S = DepositRequest.Status
MT = MintTransaction.Status
AS = MintAttempt.Status
LIVE = (AS.SIGNED, AS.SENT)
# A sent attempt the node does not know is sent again only after this: a node may not list a
# transaction it has just accepted, and Base rate-limits repeated sends of one sender:nonce.
REBROADCAST_AFTER = dt.timedelta(seconds=30)
REPLACED_AFTER = dt.timedelta(seconds=30)
UNDERPRICED_WAITING = "underpriced_waiting"  # refused as underpriced above the lowest nonce


def _add(counts: dict[str, int], more: dict[str, int]) -> None:
    for key, value in more.items():
        counts[key] = counts.get(key, 0) + value


def _live_attempts(signer: SignerAccount, *, mined: int, at_mined: bool, limit: int):
    nonce = {"nonce__lt": mined} if at_mined else {"nonce__gte": mined}
    return list(
        MintAttempt.objects.filter(signer=signer, status__in=LIVE, **nonce)
        .select_related("mint_transaction")
        .order_by("nonce", "created_at")[:limit]
    )


# --- 1. Nonce sync ----------------------------------------------------------------------------


def signer_nonce_sync(*, client: NtzsClient, signer: SignerAccount) -> int:
    """The signer's mined nonce count, read now and stored (never lowered). Returns it."""
    mined = client.w3.eth.get_transaction_count(signer.address, "latest")
    SignerAccount.objects.filter(pk=signer.pk, last_mined_nonce__lt=mined).update(
        last_mined_nonce=mined
    )
    return mined


# --- 2. Confirm mined -------------------------------------------------------------------------


def _mined_attempt(
    client: NtzsClient,
    attempt: MintAttempt,
    receipt,
    head: int,
    landed: list[Landed],
    blocks: dict,
    costs: list,
) -> str:
    if head - receipt["blockNumber"] + 1 < settings.MINT_CONFIRMATIONS:
        return "confirming"
    # Whatever it did, it was paid for: the day's cost of minting counts it.
    costs.append((receipt, block_day(client, receipt["blockNumber"], blocks)))
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
        ref=signed_ref(mint),
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
            block_day=block_day(client, receipt["blockNumber"], blocks),
        )
    )
    return "minted"


def _replace_losers(attempts: list[MintAttempt], winner: MintAttempt | None) -> None:
    losers = [a.pk for a in attempts if winner is None or a.pk != winner.pk]
    MintAttempt.objects.filter(pk__in=losers, status__in=LIVE).update(status=AS.REPLACED)


def _unrecordable(item: Landed) -> None:
    """A landed mint that cannot be recorded (its log claimed by something else, or the
    deposit in a status that cannot become minted): a person must look. The attempt is
    terminal, so it no longer blocks the nonce checks."""
    alert_raise(
        kind="mint landed but not recorded",
        key=item.tx_hash,
        detail=f"deposit {item.deposit_id} log {item.tx_hash}#{item.log_index}",
        deposit_id=item.deposit_id,
    )
    MintAttempt.objects.filter(pk=item.attempt_id, status__in=LIVE).update(
        status=AS.MINED_OK, error="landed but not recorded: see the alert"
    )


def mints_mined_confirm(
    *, client: NtzsClient, signer: SignerAccount, mined: int, limit: int = 2000
) -> dict[str, int]:
    """Live attempts at nonces below ``mined``: the one with a receipt decides (recorded
    when its mint log is there and deep enough), the others at its nonce are replaced."""
    live = _live_attempts(signer, mined=mined, at_mined=True, limit=limit)
    if not live:
        return {}
    head = client.confirmation_head()  # the safe head under MINT_CONFIRMATION_TAG=safe
    receipts = client.receipts([a.tx_hash for a in live])
    landed: list[Landed] = []
    costs: list = []
    blocks: dict[int, dt.date] = {}
    counts: dict[str, int] = {}
    for _nonce, group in itertools.groupby(live, key=lambda a: a.nonce):
        attempts = list(group)
        found = next(((a, receipts[a.tx_hash]) for a in attempts if receipts.get(a.tx_hash)), None)
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
            outcome = _mined_attempt(client, found[0], found[1], head, landed, blocks, costs)
            if outcome != "confirming":
                _replace_losers(attempts, found[0])
        counts[outcome] = counts.get(outcome, 0) + 1
    attempts_cost_record(costs)
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
    return counts


# --- 3. Recover unmined -----------------------------------------------------------------------


def _known(client: NtzsClient, attempt: MintAttempt) -> bool:
    try:
        return client.w3.eth.get_transaction(attempt.tx_hash) is not None
    except (TransactionNotFound, ValueError, LookupError):
        return False


class _Market:
    """The next block's base fee and the tip the node asks for, read once per run and only
    when a decision needs them (most runs bump nothing)."""

    def __init__(self, client: NtzsClient):
        self.client = client
        self._read: tuple[int, int] | None = None

    def read(self) -> tuple[int, int]:
        if self._read is None:
            self._read = (next_base_fee(self.client), self.client.priority_fee())
        return self._read


def _recover_unmined(
    client: NtzsClient, attempts: list[MintAttempt], *, lowest: bool, market: _Market
) -> str:
    """Only the latest attempt at an unmined nonce is acted on: an unsent one (a crash after
    commit) is sent; a sent one the node no longer knows, older than ~2 blocks, is sent
    again (the same bytes). Only at the ``lowest`` unmined nonce — the one every later nonce
    waits for — is an attempt bumped, and only when it is underpriced: pending longer than
    MINT_FEE_BUMP_AFTER_S with fees the next block would not take, or refused as
    underpriced. Bumping a later nonce would buy nothing (it cannot be mined first) and
    spends Base's per-sender resend limit."""
    latest = max(attempts, key=lambda a: a.created_at)
    if latest.status == AS.SIGNED:
        logger.info(
            "Found existing txHash, checking receipt tx=%s (signed, not sent)", latest.tx_hash
        )
        return _after_send(client, latest, attempt_send(client, latest), lowest, market)
    age = now() - (latest.sent_at or latest.created_at)
    if age < REBROADCAST_AFTER:
        return "recent"
    if _known(client, latest):
        if lowest and age >= dt.timedelta(seconds=settings.MINT_FEE_BUMP_AFTER_S):
            base_fee, tip = market.read()
            fees = Fees(int(latest.max_fee_per_gas), int(latest.max_priority_fee_per_gas))
            if fees.underpriced(base_fee=base_fee, tip=tip):
                return _replace(client, latest, kind=MintAttempt.Kind.FEE_BUMP, market=market)
        return "pending"
    logger.info(
        "Found existing txHash, checking receipt tx=%s (unknown to the node: rebroadcast)",
        latest.tx_hash,
    )
    return _after_send(client, latest, attempt_send(client, latest), lowest, market)


def _after_send(
    client: NtzsClient, attempt: MintAttempt, outcome: SendOutcome, lowest: bool, market: _Market
) -> str:
    """A refusal fees can cure gets a bump at once at the lowest unmined nonce (a
    priced-out transaction may have been evicted); a later nonce waits, signed, for its
    turn. One fees cannot cure marks the attempt rejected and fills its nonce."""
    if outcome.sent is not Sent.REFUSED:
        return outcome.sent.value
    attempt_error_record(attempt, outcome)
    if outcome.refusal is Refusal.UNDERPRICED:
        if not lowest:
            return UNDERPRICED_WAITING
        return _replace(client, attempt, kind=MintAttempt.Kind.FEE_BUMP, market=market)
    if outcome.refusal is Refusal.INCURABLE:
        # The fill's fees are read first: with the attempt rejected and no fill made (the
        # read failed), nothing would be live at this nonce and no later run would fill it.
        market.read()
        MintAttempt.objects.filter(pk=attempt.pk, status__in=LIVE).update(status=AS.REJECTED)
        logger.error(
            "mint attempt %s refused for good (%s): filling nonce %s",
            attempt.tx_hash,
            outcome.message,
            attempt.nonce,
        )
        return _replace(client, attempt, kind=MintAttempt.Kind.NONCE_FILL, market=market)
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


def _fee_cap_reached(attempt: MintAttempt, *, wanted: int, base_fee: int) -> None:
    alert_raise(
        kind=FEE_CAP_ALERT,
        detail=(
            f"nonce {attempt.nonce} needs {wanted} wei per gas (next base fee {base_fee}); "
            f"MINT_MAX_FEE_PER_GAS_WEI is {settings.MINT_MAX_FEE_PER_GAS_WEI}"
        ),
    )


def _replace(client: NtzsClient, attempt: MintAttempt, *, kind: str, market: _Market) -> str:
    """A fee bump or a nonce fill, made like a batch: row locked, signed, inserted,
    committed — then sent. A bump repeats the method the mint was signed with. Fees never
    exceed MINT_MAX_FEE_PER_GAS_WEI: a bump the cap cuts opens the fee-cap alert, and one
    the cap keeps from outbidding the attempt it would replace is not made at all (the node
    would refuse it; the attempt waits for the base fee to fall or the cap to rise)."""
    base_fee, tip = market.read()
    previous = Fees(int(attempt.max_fee_per_gas), int(attempt.max_priority_fee_per_gas))
    quote = fees_bumped(previous, base_fee=base_fee, tip=tip, cap=settings.MINT_MAX_FEE_PER_GAS_WEI)
    if quote.capped:
        _fee_cap_reached(attempt, wanted=quote.wanted_max_fee, base_fee=base_fee)
    else:
        alert_resolve(kind=FEE_CAP_ALERT)
    # A fill follows a refusal fees cannot cure: nothing of this nonce is in the pool to
    # outbid, so the cap never stops it.
    if kind == MintAttempt.Kind.FEE_BUMP and not quote.replaces(previous):
        logger.warning(
            "fee bump at nonce %s not made: MINT_MAX_FEE_PER_GAS_WEI (%s wei) is reached",
            attempt.nonce,
            settings.MINT_MAX_FEE_PER_GAS_WEI,
        )
        return "fee_cap"
    fees = quote.fees
    ref = signed_ref(attempt.mint_transaction) if attempt.mint_transaction else None
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
    if outcome.sent is Sent.REFUSED:  # handled by the next run, never in a loop here
        attempt_error_record(replacement, outcome)
        return f"{kind}_refused"
    if outcome.sent is Sent.BACK_OFF:  # signed, sent by the next run
        return Sent.BACK_OFF.value
    return kind


def mints_unmined_recover(
    *, client: NtzsClient, signer: SignerAccount, mined: int, limit: int = 2000
) -> dict[str, int]:
    """Each unmined nonce with live attempts, lowest first: see ``_recover_unmined``. When
    the node asks us to back off (pool full, rate limited), no higher nonce is sent in this
    run: it would meet the same limit, and the attempts stay signed for the next run. Nor
    after a later nonce refused as underpriced: the ones above it carry the same fees, and
    they all go (bumped in turn) once the nonces below them are mined."""
    counts: dict[str, int] = {}
    live = _live_attempts(signer, mined=mined, at_mined=False, limit=limit)
    market = _Market(client)
    for nonce, group in itertools.groupby(live, key=lambda a: a.nonce):
        outcome = _recover_unmined(client, list(group), lowest=nonce == mined, market=market)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome in (Sent.BACK_OFF.value, UNDERPRICED_WAITING):
            break
    return counts


# --- 4. Settle --------------------------------------------------------------------------------


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
    """A mint whose attempts are all terminal: minted (its log found, or its reference
    minted elsewhere) or failed (proven dead)."""
    proof = mint_proof(client, mint)
    if proof.verdict is Verdict.MINTED:
        return "minted" if record_proven_mint(client, mint, proof) else "unrecorded"
    if proof.verdict is Verdict.REF_MINTED:
        resolved = mint_resolve_already_minted(client=client, deposit_id=mint.deposit_id)
        return "minted" if resolved else "unresolved"
    if proof.verdict is Verdict.DEAD:
        last_error = mint.attempts.exclude(error="").order_by("-created_at").first()
        reason = last_error.error if last_error else "reverted on chain"
        return "failed" if _record_failed(mint.pk, reason) else "unchanged"
    return "waiting"


def mints_finished_settle(*, client: NtzsClient) -> dict[str, int]:
    """Every signed or sent mint with no live attempt left is settled."""
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


# --- 5. Ledger check --------------------------------------------------------------------------


def signer_ledger_check(*, client: NtzsClient, signer: SignerAccount) -> str:
    """With nothing in flight, the chain's pending count must equal the ledger. Below it,
    the gap is filled; above it, a transaction was made outside this system with our key:
    alert, stop sending, and wait for an operator (``minting_start`` resyncs).

    The chain is read first, then the ledger is locked and re-checked, so a batch committing
    or sending meanwhile is never mistaken for a gap or an outside transaction."""
    if MintAttempt.objects.filter(signer=signer, status__in=LIVE).exists():
        return ""
    minter = signer.address
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
        if pending < locked.next_nonce and locked.sending_enabled:
            # A nonce whose attempt we recorded as mined is no gap: the chain lost it (a
            # reorg). Filling it would kill the signed mint for good while the books say
            # minted; the finality check alerts and the same bytes are rebroadcast instead.
            # With sending stopped (an incident, a key rotation) nothing is filled either.
            recorded = set(
                MintAttempt.objects.filter(
                    signer=locked, nonce__gte=pending, status=MintAttempt.Status.MINED_OK
                ).values_list("nonce", flat=True)
            )
            fills = [
                _gap_fill_attempt(client, locked, nonce)
                for nonce in range(pending, locked.next_nonce)
                if nonce not in recorded
                and not MintAttempt.objects.filter(
                    signer=locked, nonce=nonce, status__in=LIVE
                ).exists()
            ]
    for fill in fills:  # committed, then sent
        logger.warning("gap at nonce %s filled by %s", fill.nonce, fill.tx_hash)
        attempt_send(client, fill)
    return "gap_filled" if fills else ""


def _gap_fill_attempt(client: NtzsClient, signer: SignerAccount, nonce: int) -> MintAttempt:
    fees = fees_quote(
        base_fee=next_base_fee(client),
        tip=client.priority_fee(),
        cap=settings.MINT_MAX_FEE_PER_GAS_WEI,
    ).fees
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


# --- 6. Lease sweep ---------------------------------------------------------------------------


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


# --- 7. Finality ------------------------------------------------------------------------------


def mints_finality_check(*, client: NtzsClient, limit: int = 500) -> dict[str, int]:
    """Every recorded mint not yet checked is read again (one batch of receipts): once the
    ``safe`` head passes its block it is marked checked — under another log index a
    superseding claim is appended; gone from the chain, the alert opens and sending stops."""
    mints = list(
        MintTransaction.objects.filter(
            status=MT.MINTED, finality_checked_at__isnull=True, chain_id=settings.CHAIN_ID
        )
        .exclude(tx_hash="")
        .order_by("updated_at")[:limit]
    )
    if not mints:
        return {}
    safe_head = client.head("safe")
    receipts = client.receipts(sorted({m.tx_hash for m in mints}))
    counts: dict[str, int] = {}
    for mint in mints:
        outcome = mint_finality_check(mint, receipt=receipts.get(mint.tx_hash), safe_head=safe_head)
        if outcome is not Finality.WAITING:
            key = f"finality_{outcome}"
            counts[key] = counts.get(key, 0) + 1
    return counts


# --- One run ----------------------------------------------------------------------------------


def mints_confirm(*, client_factory, limit: int = 2000) -> dict[str, int]:
    """One confirm run: the six steps above, in order. The Safe lane's confirmations are the
    runner's (``safe_awaiting_recheck``), not this function's."""
    client = client_factory()
    signer = minter_signer()
    if signer is None:
        return {}
    counts: dict[str, int] = {}
    mined = signer_nonce_sync(client=client, signer=signer)
    _add(counts, mints_mined_confirm(client=client, signer=signer, mined=mined, limit=limit))
    _add(counts, mints_unmined_recover(client=client, signer=signer, mined=mined, limit=limit))
    _add(counts, mints_finished_settle(client=client))
    nonce_check = signer_ledger_check(client=client, signer=signer)
    if nonce_check:
        counts[nonce_check] = 1
    swept = claim_lease_sweep()
    if swept:
        counts["lease_swept"] = swept
    return counts
