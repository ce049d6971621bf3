"""The mint pipeline, steps 0–2 of DESIGN §7: preflight and candidates before any lock (and
the deposits that cannot fit today's cap marked), one database transaction per batch (claim,
cap, nonces, signing, attempts, reservation, batch transition), then sending the committed
bytes (``sending``). An already minted reference is resolved by ``recording``.

A crash before the batch commits leaves nothing behind; after it, every nonce has its signed
attempt in the database and ``confirm_mints`` sends or finds it (never a second signature
for the same deposit while an earlier one can still land)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from eth_account import Account
from eth_utils import to_checksum_address

from core.clock import now, today_utc
from core.crashpoints import crash_point
from core.money import tzs_to_units
from core.selectors import mint_lane_effective
from core.services import alert_raise, alert_resolve, task_enqueue_on_commit
from deposits.exceptions import TransitionRefused
from deposits.models import DepositRequest
from deposits.services.transitions import (
    LANE_SAFE_ONLY_NOTE,
    deposit_hold_set,
    deposits_claim,
    deposits_route_to_safe_for_lane,
)
from minting.chain import (
    ChainError,
    ChainUnavailable,
    MinterState,
    NtzsClient,
    account_address,
)
from minting.contract_artifact import deposit_ref
from minting.models import DailyIssuance, MintAttempt, MintTransaction, SignerAccount
from minting.services.deposit_refs import mint_with_ref_policy, signs_with_ref
from minting.services.ledger import (
    cap_remaining,
    daily_issuance_locked,
    minter_room_left,
    reservation_add,
    signer_account,
)
from minting.services.recording import mint_resolve_already_minted
from minting.services.sending import FEE_CAP_ALERT, batch_send
from minting.signing import Fees, fees_quote, mint_calldata, mint_gas_limit, sign

logger = logging.getLogger("minting")
S = DepositRequest.Status
MT = MintTransaction.Status
# Any id: the L1 fee estimate only needs a reference as incompressible as a real one.
SAMPLE_DEPOSIT_ID = uuid.UUID(int=2**128 - 1)


@dataclass
class Preflight:
    ok: bool
    reason: str = ""
    unavailable: bool = False  # the node did not answer: the breaker counts it
    client: NtzsClient | None = None
    signer: SignerAccount | None = None
    fees: Fees | None = None
    mint_with_ref: bool = False
    head_block: int | None = None  # read before signing: where this batch's log reads start
    # Read at ``head_block``, for affordability (DESIGN §7.4): what the minter holds, its
    # mined nonce count (the live attempts at or above it are unpaid), and the L1 data fee
    # of one mint now (0 on a chain without the OP Stack's GasPriceOracle).
    balance_wei: int = 0
    mined_nonce: int = 0
    l1_fee_wei: int = 0


def _record_preflight(signer: SignerAccount | None, ok: bool, reason: str) -> None:
    if signer is not None:
        SignerAccount.objects.filter(pk=signer.pk).update(
            preflight_ok=ok, preflight_reason=reason[:500], preflight_at=now()
        )


def mint_preflight(client_factory) -> Preflight:
    """Step 0: every check that would make a signed mint fail predictably, before any lock
    and without burning a nonce. A failure leaves jobs waiting with the reason recorded."""
    signer = None
    try:
        client = client_factory()
        minter = account_address(settings.MINTER_PRIVATE_KEY)
        state = client.minter_state(minter)  # one head, one batch read at it
        signer = signer_account(
            address=minter, chain_id=settings.CHAIN_ID, chain_next_nonce=state.pending_nonce
        )
        head_block, balance, mined_nonce = state.head, state.balance_wei, state.mined_nonce
        reason = _preflight_problem(state, signer, minter)
        if not reason:
            fees, reason = _fees_read(base_fee=state.next_base_fee, tip=state.priority_fee)
        if reason:
            _record_preflight(signer, False, reason)
            return Preflight(ok=False, reason=reason, signer=signer)
        with_ref = mint_with_ref_policy(lambda: client, require_agreement=True)
        l1_fee = _l1_fee_estimate(client, signer, fees)
    except ChainError as exc:
        _record_preflight(signer, False, str(exc))
        return Preflight(
            ok=False, reason=str(exc), signer=signer, unavailable=isinstance(exc, ChainUnavailable)
        )
    except (OSError, ValueError) as exc:
        reason = f"chain unavailable ({type(exc).__name__})"
        _record_preflight(signer, False, reason)
        return Preflight(ok=False, reason=reason, signer=signer, unavailable=True)
    _record_preflight(signer, True, "")
    return Preflight(
        ok=True,
        client=client,
        signer=signer,
        fees=fees,
        mint_with_ref=with_ref,
        head_block=head_block,
        balance_wei=balance,
        mined_nonce=mined_nonce,
        l1_fee_wei=l1_fee,
    )


def _fees_read(*, base_fee: int, tip: int) -> tuple[Fees | None, str]:
    """New signatures' fees (headroom over the next block's base fee, under
    MINT_MAX_FEE_PER_GAS_WEI), or why no batch is signed: a cap so low that the next block
    would not take a transaction at it (the fee-cap alert opens; it resolves once fees fit
    under the cap again)."""
    quote = fees_quote(base_fee=base_fee, tip=tip, cap=settings.MINT_MAX_FEE_PER_GAS_WEI)
    if quote.fees.underpriced(base_fee=base_fee, tip=tip):
        detail = (
            f"the next block's base fee is {base_fee} wei and the tip asked {tip} wei; "
            f"MINT_MAX_FEE_PER_GAS_WEI is {settings.MINT_MAX_FEE_PER_GAS_WEI}"
        )
        alert_raise(kind=FEE_CAP_ALERT, detail=detail)
        return None, f"fees are above MINT_MAX_FEE_PER_GAS_WEI: {detail}"
    if not quote.capped:
        alert_resolve(kind=FEE_CAP_ALERT)
    return quote.fees, ""


# The sample's signer: a key of no account, made once per process. The sample is a complete,
# valid transaction handed to the RPC provider; signed by the minter it would be a real mint
# of MAX_DEPOSIT_TZS to the minter at its next nonce, which anyone on the path could
# broadcast. Signed by this key it can never mine (no MINTER_ROLE, no ETH), and its bytes
# are as many as a real mint's, which is all the L1 fee depends on.
_SAMPLE_KEY = Account.create().key.hex()


def l1_fee_sample(*, contract: str, signer: SignerAccount, fees: Fees) -> bytes:
    """Signed bytes as large as a real mint's (mintForDeposit, a large amount), by a key
    that cannot mint."""
    sample = sign(
        private_key=_SAMPLE_KEY,
        chain_id=settings.CHAIN_ID,
        nonce=signer.next_nonce,
        to=contract,
        data=mint_calldata(
            to=signer.address,
            amount_units=tzs_to_units(settings.MAX_DEPOSIT_TZS),
            deposit_ref=deposit_ref(SAMPLE_DEPOSIT_ID),
        ),
        gas=mint_gas_limit(),
        fees=fees,
    )
    return bytes.fromhex(sample.raw_hex[2:])


def _l1_fee_estimate(client: NtzsClient, signer: SignerAccount, fees: Fees) -> int:
    """The L1 data fee of one mint now, from GasPriceOracle.getL1Fee on a sample of a
    mint's size (a signature adds bytes, so the estimate errs high). 0 on a chain without
    the oracle."""
    if not client.has_gas_price_oracle:
        return 0
    return client.l1_fee(l1_fee_sample(contract=client.address, signer=signer, fees=fees))


def _preflight_problem(state: MinterState, signer: SignerAccount, minter: str) -> str:
    if not signer.sending_enabled:
        return f"sending is disabled: {signer.disabled_reason or 'minting_stop'}"
    if not state.is_minter:
        return f"the minter {minter} does not hold MINTER_ROLE"
    balance = state.balance_wei
    if balance < settings.MINTER_MIN_GAS_WEI:
        alert_raise(kind="minter gas low", detail=f"{minter} holds {balance} wei")
        return f"the minter's gas balance ({balance} wei) is below MINTER_MIN_GAS_ETH"
    if state.paused:
        return "the token is paused"
    return ""


@dataclass(frozen=True)
class Candidate:
    deposit_id: uuid.UUID
    amount_tzs: int
    to_address: str
    ref_voided: bool = False  # voided for a Safe route-back: mint without the reference


def cap_remaining_today(day: dt.date) -> int:
    """What is left of the day's cap, read without a lock (the batch re-checks under one)."""
    issuance = DailyIssuance.objects.filter(day=day).first()
    return cap_remaining(issuance) if issuance else settings.DAILY_ISSUANCE_CAP_TZS


def mint_work_waiting() -> bool:
    """Whether any deposit waits to be minted by the worker (fitting today's cap or not)."""
    return DepositRequest.objects.filter(status=S.MINT_PENDING, hold_reason="").exists()


def mint_run_needed() -> bool:
    """Whether a pipeline run has chain work to do: a deposit waits and, by the books, the
    minter has room in flight, and MINT_LANE lets the worker mint (under ``safe_only`` it
    signs nothing new; ``mints_lane_route`` moves what waits). Read from the database only."""
    return mint_work_waiting() and minter_room_left() and not mint_lane_effective().safe_only


LANE_ROUTE_BATCH = 500  # deposits per routing transaction


@dataclass(frozen=True)
class LaneRouting:
    safe_only: bool  # MINT_LANE is safe_only: the worker claims nothing this run
    routed: int = 0  # deposits moved from mint_pending to mint_requires_safe


def mints_lane_route() -> LaneRouting:
    """Under MINT_LANE ``safe_only`` (DESIGN §10), every deposit still waiting in
    ``mint_pending`` and not held goes to ``mint_requires_safe``, a transition row each (the
    system's, "MINT_LANE is safe_only"). Database only, no chain call: it runs before the
    breaker and the preflight, so a switch made during an outage applies anyway.

    A deposit already claimed into a batch is ``mint_processing`` and is left to finish
    (the compare-and-set on ``mint_pending`` skips it, and a claim racing this update waits
    for it or skips the row). ``mint_failed`` deposits are left for a person: leaving
    ``mint_failed`` needs the chain's proof that no earlier attempt can land
    (``mint_route_to_safe`` makes it). A held deposit is routed at the first run after its
    release."""
    if not mint_lane_effective().safe_only:
        return LaneRouting(safe_only=False)
    routed = 0
    while True:
        ids = list(
            DepositRequest.objects.filter(status=S.MINT_PENDING, hold_reason="")
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)[:LANE_ROUTE_BATCH]
        )
        moved = _lane_route_batch(ids) if ids else []
        routed += len(moved)
        if len(ids) < LANE_ROUTE_BATCH or not moved:
            break
    if routed:
        logger.warning(
            "MINT_LANE is safe_only: routed %d waiting deposit(s) to the Safe lane", routed
        )
    return LaneRouting(safe_only=True, routed=routed)


@transaction.atomic
def _lane_route_batch(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    moved = deposits_route_to_safe_for_lane(deposit_ids=ids)
    if moved:
        # As a person's route to the Safe does: the worker lane's mint (never signed: a
        # mint_pending deposit has nothing in flight and nothing reserved) is abandoned; a
        # Safe record, or a route back, takes it from here.
        MintTransaction.objects.filter(
            deposit_id__in=moved, status__in=(MT.PENDING, MT.CAP_EXCEEDED)
        ).update(
            status=MT.FAILED,
            error=f"routed to the Safe lane: {LANE_SAFE_ONLY_NOTE}",
            updated_at=now(),
        )
    return moved


def mint_candidates(*, limit: int) -> list[Candidate]:
    """Oldest first, not held, each fitting what is left of today's cap (no lock: the batch
    transaction re-checks everything)."""
    remaining = cap_remaining_today(today_utc())
    rows = (
        DepositRequest.objects.filter(
            status=S.MINT_PENDING, hold_reason="", amount_tzs__lte=remaining
        )
        .order_by("created_at", "pk")
        .values_list("pk", "amount_tzs", "wallet__address")[:limit]
    )
    return [Candidate(pk, amount, to_checksum_address(address)) for pk, amount, address in rows]


def screen_candidates(
    client: NtzsClient, candidates: list[Candidate], *, with_ref: bool
) -> tuple[list[Candidate], list[uuid.UUID]]:
    """One JSON-RPC batch: a blacklisted recipient is held; a deposit whose reference is
    already minted is resolved (step 5), not claimed. Returns (to claim, already minted)."""
    if not candidates:
        return [], []
    reads = []
    for candidate in candidates:
        reads.append(("isBlacklisted", (candidate.to_address,)))
        if with_ref:
            ref = deposit_ref(candidate.deposit_id)
            reads += [("isDepositMinted", (ref,)), ("isDepositRefVoided", (ref,))]
    answers = client.views(reads)  # a refused item is "try later": ChainUnavailable
    step = 3 if with_ref else 1
    claimable, minted = [], []
    for index, candidate in enumerate(candidates):
        blacklisted = answers[index * step]
        if blacklisted:
            try:
                deposit_hold_set(
                    deposit_id=candidate.deposit_id,
                    reason="blacklisted recipient",
                    source="worker",
                    details={"wallet": candidate.to_address},
                )
            except TransitionRefused:
                pass  # claimed by another worker a moment ago; its mint will revert, proven
            continue
        if with_ref and answers[index * step + 1]:
            minted.append(candidate.deposit_id)
            continue
        if with_ref and answers[index * step + 2]:
            candidate = Candidate(
                candidate.deposit_id, candidate.amount_tzs, candidate.to_address, ref_voided=True
            )
        claimable.append(candidate)
    return claimable, minted


def still_pending(deposit_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The screened "already minted" deposits nobody has claimed since the candidates were
    read. Another worker's batch, signed and mined between our read and our screening, is
    that worker's to record: resolving it here costs log reads per deposit (and races its
    confirmation for nothing)."""
    if not deposit_ids:
        return []
    return list(
        DepositRequest.objects.filter(pk__in=deposit_ids, status=S.MINT_PENDING).values_list(
            "pk", flat=True
        )
    )


@dataclass
class Batch:
    attempts: list[MintAttempt] = field(default_factory=list)
    deferred: int = 0
    unaffordable: int = 0  # claimable, but left waiting: the minter's balance did not cover them


def mint_cost_wei(*, gas_limit: int, max_fee_per_gas: int, l1_fee_wei: int) -> int:
    """The most one transaction can take from the minter's balance, as the node counts it
    when it admits a sender's transactions: gas limit x max fee, plus the L1 data fee twice
    (it follows L1's fees, which can move before the transaction is mined)."""
    return gas_limit * max_fee_per_gas + 2 * l1_fee_wei


def mints_affordable(*, preflight: Preflight, signer: SignerAccount) -> int:
    """How many new mints the minter's balance covers on top of every transaction of ours
    still unmined (each nonce at or above the mined count with a live attempt, at its
    costliest attempt: a bump replaces the one before). Called with the signer row locked,
    so no other batch adds pending transactions meanwhile."""
    unmined: dict[int, int] = {}
    live = MintAttempt.objects.filter(
        signer=signer, status__in=(MintAttempt.Status.SIGNED, MintAttempt.Status.SENT)
    ).filter(nonce__gte=preflight.mined_nonce)
    for nonce, gas_limit, max_fee in live.values_list("nonce", "gas_limit", "max_fee_per_gas"):
        cost = mint_cost_wei(
            gas_limit=gas_limit, max_fee_per_gas=int(max_fee), l1_fee_wei=preflight.l1_fee_wei
        )
        unmined[nonce] = max(unmined.get(nonce, 0), cost)
    per_mint = mint_cost_wei(
        gas_limit=mint_gas_limit(),
        max_fee_per_gas=preflight.fees.max_fee_per_gas,
        l1_fee_wei=preflight.l1_fee_wei,
    )
    return max((preflight.balance_wei - sum(unmined.values())) // per_mint, 0)


# Above MINTER_MIN_GAS_ETH (whose alert, "minter gas low", check_minter resolves every few
# minutes) but short of one mint at today's fees with nothing in flight: a kind of its own,
# so the two checks do not open and resolve each other's alert in turn.
BALANCE_SHORT_ALERT = "minter balance covers no mint"


def _shrunk_to_funds(
    preflight: Preflight, signer: SignerAccount, *, affordable: int, wanted: int
) -> None:
    logger.warning(
        "mint batch shrunk to %s of %s: the minter's balance (%s wei) covers no more "
        "alongside its unmined transactions",
        affordable,
        wanted,
        preflight.balance_wei,
    )
    unmined = MintAttempt.objects.filter(
        signer=signer,
        status__in=(MintAttempt.Status.SIGNED, MintAttempt.Status.SENT),
        nonce__gte=preflight.mined_nonce,
    ).exists()
    if affordable == 0 and not unmined:
        # Nothing in flight will free any of the balance: minting has stopped until a top-up
        # (above MINTER_MIN_GAS_ETH, which is then set too low for these fees).
        alert_raise(
            kind=BALANCE_SHORT_ALERT,
            detail=(
                f"{signer.address} holds {preflight.balance_wei} wei: not enough for one "
                f"mint at {preflight.fees.max_fee_per_gas} wei per gas"
            ),
        )


def _mint_transaction_for(candidate: Candidate, *, contract: str) -> MintTransaction:
    mint, _ = MintTransaction.objects.get_or_create(
        deposit_id=candidate.deposit_id,
        defaults={
            "chain_id": settings.CHAIN_ID,
            "contract_address": contract,
            "to_address": candidate.to_address,
            "amount_units": tzs_to_units(candidate.amount_tzs),
        },
    )
    return mint


CAP_DEFERRABLE = (MT.PENDING, MT.CAP_EXCEEDED)


def _defer_for_cap(candidate: Candidate, *, contract: str, day: dt.date) -> bool:
    """Logged once per day (``cap_deferred_on``), no transition row: the deposit stays
    ``mint_pending`` and never blocks smaller ones. The caller holds the deposit's row lock;
    the mint is marked only while nothing has claimed it (absent, pending, cap_exceeded)."""
    mint = _mint_transaction_for(candidate, contract=contract)
    first_today = (
        MintTransaction.objects.filter(pk=mint.pk, status__in=CAP_DEFERRABLE)
        .exclude(cap_deferred_on=day)
        .update(status=MT.CAP_EXCEEDED, cap_deferred_on=day, updated_at=now())
    )
    if first_today:
        logger.warning(
            "daily cap reached, deferring deposit=%s amount=%s TZS",
            candidate.deposit_id,
            candidate.amount_tzs,
        )
    return bool(first_today)


@transaction.atomic
def mints_cap_deferred_mark(*, contract: str, limit: int) -> int:
    """Step 0: the ``mint_pending`` deposits larger than what is left of today's cap — never
    candidates, so never claimed — are marked ``cap_exceeded`` with the log line, once per
    day, oldest first, at most ``limit`` per run. Returns how many were marked.

    Compare-and-set against a batch claiming at the same moment: the deposit rows are
    locked with SKIP LOCKED while still ``mint_pending``, not held, and their mint absent,
    ``pending`` or ``cap_exceeded``. A row a batch is claiming is locked by it and skipped;
    one it has claimed is ``mint_processing`` by then (PostgreSQL re-checks the condition on
    the committed row), so a signed or sent mint is never touched."""
    day = today_utc()
    remaining = cap_remaining_today(day)
    rows = list(
        DepositRequest.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=S.MINT_PENDING, hold_reason="", amount_tzs__gt=remaining)
        .filter(Q(mint_transaction__isnull=True) | Q(mint_transaction__status__in=CAP_DEFERRABLE))
        .exclude(mint_transaction__cap_deferred_on=day)
        .order_by("created_at", "pk")
        .values_list("pk", "amount_tzs", "wallet__address")[:limit]
    )
    marked = 0
    for pk, amount, address in rows:
        candidate = Candidate(pk, amount, to_checksum_address(address))
        marked += _defer_for_cap(candidate, contract=contract, day=day)
    return marked


def _claim_locked(ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, int, str]]:
    return list(
        DepositRequest.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk__in=ids, status=S.MINT_PENDING, hold_reason="")
        .order_by("created_at", "pk")
        .values_list("pk", "amount_tzs", "wallet__address")
    )


@transaction.atomic(durable=True)
def mint_batch_create(*, preflight: Preflight, candidates: list[Candidate]) -> Batch:
    """Step 1: one transaction — day row, claim, greedy cap fit, reservation, nonces,
    signatures, attempts, batch transition — then commit."""
    day = today_utc()
    issuance = daily_issuance_locked(day)
    contract = preflight.client.address
    remaining = cap_remaining(issuance)
    batch = Batch()
    chosen: list[Candidate] = []
    voided = {c.deposit_id for c in candidates if c.ref_voided}
    for pk, amount, address in _claim_locked([c.deposit_id for c in candidates]):
        candidate = Candidate(pk, amount, to_checksum_address(address), pk in voided)
        if amount <= remaining:
            chosen.append(candidate)
            remaining -= amount
        else:
            _defer_for_cap(candidate, contract=contract, day=day)
            batch.deferred += 1
    signer = SignerAccount.objects.select_for_update().get(pk=preflight.signer.pk)
    # Read again under the signer's lock: a safe_only switch approved while this run read
    # the chain must stop the hot key signing (the next run routes these deposits).
    if not signer.sending_enabled or mint_lane_effective().safe_only:
        return batch
    room = settings.MINT_MAX_IN_FLIGHT - (signer.next_nonce - signer.last_mined_nonce)
    chosen = chosen[: max(room, 0)]
    affordable = mints_affordable(preflight=preflight, signer=signer)
    if affordable:
        alert_resolve(kind=BALANCE_SHORT_ALERT)
    if affordable < len(chosen):
        _shrunk_to_funds(preflight, signer, affordable=affordable, wanted=len(chosen))
        batch.unaffordable = len(chosen) - affordable
        chosen = chosen[:affordable]
    if not chosen:
        return batch
    batch.attempts = _sign_into_attempts(chosen, preflight=preflight, signer=signer, day=day)
    SignerAccount.objects.filter(pk=signer.pk).update(
        next_nonce=signer.next_nonce + len(chosen), updated_at=now()
    )
    reservation_add(day=day, amount_tzs=sum(c.amount_tzs for c in chosen))
    moved = deposits_claim(deposit_ids=[c.deposit_id for c in chosen])
    if len(moved) != len(chosen):  # rows were locked by us: this cannot happen
        raise RuntimeError("claimed deposits changed under their row locks")
    crash_point("batch_before_commit")
    return batch


def _mint_transactions_for(
    chosen: list[Candidate], *, contract: str
) -> dict[uuid.UUID, MintTransaction]:
    """The MintTransaction of each chosen deposit: existing ones (a retry, a deferral) are
    reused, the others inserted in one statement."""
    existing = {
        m.deposit_id: m
        for m in MintTransaction.objects.filter(deposit_id__in=[c.deposit_id for c in chosen])
    }
    MintTransaction.objects.bulk_create(
        [
            MintTransaction(
                deposit_id=c.deposit_id,
                chain_id=settings.CHAIN_ID,
                contract_address=contract,
                to_address=c.to_address,
                amount_units=tzs_to_units(c.amount_tzs),
            )
            for c in chosen
            if c.deposit_id not in existing
        ]
    )
    return {
        m.deposit_id: m
        for m in MintTransaction.objects.filter(deposit_id__in=[c.deposit_id for c in chosen])
    }


def _sign_into_attempts(
    chosen: list[Candidate], *, preflight: Preflight, signer: SignerAccount, day: dt.date
) -> list[MintAttempt]:
    """Sign each mint at consecutive nonces; one MintAttempt per deposit, the reservation
    and the signed status on each MintTransaction (bulk statements)."""
    mints = _mint_transactions_for(chosen, contract=preflight.client.address)
    gas, at = mint_gas_limit(), now()
    attempts, rows = [], []
    for offset, candidate in enumerate(chosen):
        mint = mints[candidate.deposit_id]
        with_ref = signs_with_ref(policy=preflight.mint_with_ref, ref_voided=candidate.ref_voided)
        ref = deposit_ref(candidate.deposit_id) if with_ref else None
        signed = sign(
            private_key=settings.MINTER_PRIVATE_KEY,
            chain_id=settings.CHAIN_ID,
            nonce=signer.next_nonce + offset,
            to=preflight.client.address,
            data=mint_calldata(
                to=candidate.to_address,
                amount_units=tzs_to_units(candidate.amount_tzs),
                deposit_ref=ref,
            ),
            gas=gas,
            fees=preflight.fees,
        )
        attempts.append(
            MintAttempt(
                mint_transaction=mint,
                signer=signer,
                nonce=signer.next_nonce + offset,
                tx_hash=signed.tx_hash,
                raw_tx=signed.raw_hex,
                max_fee_per_gas=preflight.fees.max_fee_per_gas,
                max_priority_fee_per_gas=preflight.fees.max_priority_fee_per_gas,
                gas_limit=gas,
                kind=MintAttempt.Kind.MINT,
                created_at=at,
            )
        )
        mint.status, mint.source, mint.reserved_day = MT.SIGNED, MintTransaction.Source.WORKER, day
        mint.reserved_tzs, mint.attempt_count, mint.error = (
            candidate.amount_tzs,
            mint.attempt_count + 1,
            "",
        )
        mint.to_address, mint.updated_at = candidate.to_address, at
        mint.uses_deposit_ref = with_ref
        if mint.logs_from_block is None and mint.attempt_count == 1:
            # Its first signature: no log of any of its attempts can be below this head (a
            # row signed before heads were stored keeps None: its reads start at the deploy
            # block).
            mint.logs_from_block = preflight.head_block
        rows.append(mint)
    _mints_mark_signed(rows, day=day, at=at, head_block=preflight.head_block)
    return MintAttempt.objects.bulk_create(attempts, batch_size=500)


def _mints_mark_signed(rows: list[MintTransaction], *, day, at, head_block: int) -> None:
    """Write what ``_sign_into_attempts`` set on the rows: what all share in one UPDATE per
    method, and only the two per-row values through ``bulk_update`` (its CASE per field
    and row costs milliseconds of CPU per mint, paid while the day's cap row is locked)."""
    for with_ref in {m.uses_deposit_ref for m in rows}:
        MintTransaction.objects.filter(
            pk__in=[m.pk for m in rows if m.uses_deposit_ref is with_ref]
        ).update(
            status=MT.SIGNED,
            source=MintTransaction.Source.WORKER,
            reserved_day=day,
            attempt_count=F("attempt_count") + 1,
            error="",
            updated_at=at,
            uses_deposit_ref=with_ref,
        )
    first = [m.pk for m in rows if m.logs_from_block == head_block and m.attempt_count == 1]
    MintTransaction.objects.filter(pk__in=first, logs_from_block__isnull=True).update(
        logs_from_block=head_block
    )
    MintTransaction.objects.bulk_update(rows, ["reserved_tzs", "to_address"], batch_size=500)


@dataclass
class RunResult:
    preflight_reason: str = ""
    unavailable: bool = False
    signed: int = 0
    deferred: int = 0
    resolved: int = 0
    unaffordable: int = 0  # left waiting this run: the minter's balance did not cover them
    sent: dict[str, int] = field(default_factory=dict)
    routed_to_safe: int = 0  # MINT_LANE safe_only: waiting deposits moved to the Safe lane


def mint_jobs_process(*, client_factory, limit: int | None = None) -> RunResult:
    """One run of the pipeline: preflight, candidates, the deposits over today's cap
    marked, one batch, send. With no deposit waiting, or no room in flight by the books, it
    asks the chain nothing: on Base every call counts against the endpoint's rate limit, and
    runs follow each other every few seconds. Under MINT_LANE ``safe_only`` it routes the
    waiting deposits to the Safe lane and signs nothing."""
    routing = mints_lane_route()
    if routing.safe_only:
        return RunResult(routed_to_safe=routing.routed)
    if not mint_run_needed():
        return RunResult()
    preflight = mint_preflight(client_factory)
    if not preflight.ok:
        logger.info("mint jobs waiting: %s", preflight.reason)
        return RunResult(preflight_reason=preflight.reason, unavailable=preflight.unavailable)
    # No more candidates than the in-flight room (re-checked under the lock): screening reads
    # for deposits that cannot be signed now only spend the node's rate limit.
    signer = preflight.signer
    room = settings.MINT_MAX_IN_FLIGHT - (signer.next_nonce - signer.last_mined_nonce)
    candidates = mint_candidates(limit=max(min(limit or settings.MINT_BATCH_SIZE, room), 0))
    claimable, already = screen_candidates(
        preflight.client, candidates, with_ref=preflight.mint_with_ref
    )
    result = RunResult()
    for deposit_id in still_pending(already):
        result.resolved += mint_resolve_already_minted(
            client=preflight.client, deposit_id=deposit_id
        )
    result.deferred += mints_cap_deferred_mark(
        contract=preflight.client.address, limit=limit or settings.MINT_BATCH_SIZE
    )
    if not claimable:
        if already:
            # The whole batch was minted already (a lost write, a redelivered run): nothing
            # is signed again (DESIGN §13's line).
            logger.info(
                "Batch already completed (idempotency) deposits=%s resolved=%s",
                len(already),
                result.resolved,
            )
        return result
    batch = mint_batch_create(preflight=preflight, candidates=claimable)
    result.signed = len(batch.attempts)
    result.deferred += batch.deferred
    result.unaffordable = batch.unaffordable
    if batch.attempts:
        result.sent = batch_send(preflight.client, batch.attempts)
        # One block later (DESIGN §7.2): Base makes a block every 2 s.
        task_enqueue_on_commit("minting.tasks.confirm_mints", countdown=2)
    return result
