"""The deposit state machine (DESIGN §5): one function per edge, each a compare-and-set on
the allowed from-statuses with the row count checked, writing its DepositTransition in the
same transaction. Nothing else changes ``DepositRequest.status``.

Functions use plain ``transaction.atomic`` so they compose inside a use-case; side effects
(enqueueing) run after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction

from core.clock import now
from core.selectors import mint_lane_effective
from core.services import task_enqueue_on_commit
from deposits.exceptions import TransitionRefused
from deposits.models import DepositRequest, DepositTransition

S = DepositRequest.Status
Source = DepositTransition.Source
DEFAULT_SAFE_THRESHOLD_TZS = 9_000

# Every legal edge (from, to). Holds are from == to and are not edges.
EDGES: frozenset[tuple[str, str]] = frozenset(
    {
        (S.SUBMITTED, S.MINT_PENDING),
        (S.SUBMITTED, S.MINT_REQUIRES_SAFE),
        (S.SUBMITTED, S.CANCELLED),
        (S.SUBMITTED, S.REJECTED),
        (S.CANCELLED, S.MINT_PENDING),
        (S.CANCELLED, S.MINT_REQUIRES_SAFE),
        (S.REJECTED, S.MINT_PENDING),
        (S.REJECTED, S.MINT_REQUIRES_SAFE),
        (S.MINT_PENDING, S.MINT_PROCESSING),
        (S.MINT_PROCESSING, S.MINT_PENDING),
        (S.MINT_PROCESSING, S.MINTED),
        (S.MINT_PROCESSING, S.MINT_FAILED),
        (S.MINT_FAILED, S.MINT_PENDING),
        (S.MINT_PENDING, S.MINTED),
        (S.MINT_FAILED, S.MINTED),
        (S.MINT_PENDING, S.MINT_REQUIRES_SAFE),
        (S.MINT_FAILED, S.MINT_REQUIRES_SAFE),
        (S.MINT_REQUIRES_SAFE, S.MINT_PENDING),
        (S.MINT_REQUIRES_SAFE, S.MINTED),
        (S.SUBMITTED, S.REFUNDED),
        (S.CANCELLED, S.REFUNDED),
        (S.REJECTED, S.REFUNDED),
        (S.MINT_PENDING, S.REFUNDED),
        (S.MINT_FAILED, S.REFUNDED),
        (S.MINT_REQUIRES_SAFE, S.REFUNDED),
    }
)
HOLDABLE = (
    S.SUBMITTED,
    S.CANCELLED,
    S.REJECTED,
    S.MINT_PENDING,
    S.MINT_FAILED,
    S.MINT_REQUIRES_SAFE,
)
# The hold reason of a payment of another amount than the deposit's (mobile money or bank);
# its release never mints the deposit as is (operator's hold release).
AMOUNT_MISMATCH = "amount mismatch"
# The note of the transition that routes a waiting deposit to the Safe under MINT_LANE.
LANE_SAFE_ONLY_NOTE = "MINT_LANE is safe_only"


def deposit_lane(*, amount_tzs: int) -> str:
    """The lane rule, one function for every path: every deposit to the Safe while MINT_LANE
    is ``safe_only`` (the environment's, or a super admin's override), else large deposits
    need the Safe."""
    if mint_lane_effective().safe_only:
        return S.MINT_REQUIRES_SAFE
    threshold = getattr(settings, "SAFE_MINT_THRESHOLD_TZS", DEFAULT_SAFE_THRESHOLD_TZS)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
        threshold = DEFAULT_SAFE_THRESHOLD_TZS  # never 0: that would route everything
    return S.MINT_REQUIRES_SAFE if amount_tzs >= threshold else S.MINT_PENDING


def _require_edge(from_status: str, to_status: str) -> None:
    if (from_status, to_status) not in EDGES:
        raise ValueError(f"{from_status} -> {to_status} is not an edge of the state machine")


def _after_enter(status: str) -> None:
    if status == S.MINT_PENDING:
        task_enqueue_on_commit("minting.tasks.process_mint_jobs")


@transaction.atomic
def _transition(
    *,
    deposit_id: uuid.UUID,
    allowed: Iterable[str],
    to_status: str,
    source: str,
    actor=None,
    note: str = "",
    metadata: dict | None = None,
    updates: dict | None = None,
    require_not_held: bool = True,
) -> str:
    """Move one deposit from one of ``allowed`` to ``to_status``; returns the from-status.

    The row is read with FOR UPDATE (so the transition row names the true from-status),
    then updated WHERE status = that status, and the row count checked."""
    allowed = tuple(allowed)
    for from_status in allowed:
        _require_edge(from_status, to_status)
    current = (
        DepositRequest.objects.select_for_update()
        .filter(pk=deposit_id)
        .values("status", "hold_reason")
        .first()
    )
    if current is None:
        raise TransitionRefused(deposit_id, to=to_status)
    if current["status"] not in allowed:
        raise TransitionRefused(deposit_id, to=to_status, found=current["status"])
    if require_not_held and current["hold_reason"]:
        raise TransitionRefused(deposit_id, to=to_status, found=current["status"], held=True)
    guard = {"hold_reason": ""} if require_not_held else {}
    updated = DepositRequest.objects.filter(
        pk=deposit_id, status=current["status"], **guard
    ).update(status=to_status, updated_at=now(), **(updates or {}))
    if updated != 1:
        raise TransitionRefused(deposit_id, to=to_status, found=current["status"])
    DepositTransition.objects.create(
        deposit_id=deposit_id,
        from_status=current["status"],
        to_status=to_status,
        source=source,
        actor=actor,
        note=note,
        metadata=metadata or {},
    )
    _after_enter(to_status)
    return current["status"]


@transaction.atomic
def deposits_transition_batch(
    *,
    deposit_ids: list[uuid.UUID],
    from_status: str,
    to_status: str,
    source: str,
    note: str = "",
    require_not_held: bool = True,
) -> list[uuid.UUID]:
    """The batch form: ``UPDATE … WHERE id IN (…) AND status = … RETURNING id`` then a bulk
    insert of exactly those transition rows. Returns the ids that moved (PostgreSQL, and
    SQLite ≥ 3.35, both support RETURNING)."""
    _require_edge(from_status, to_status)
    if not deposit_ids:
        return []
    id_field = DepositRequest._meta.pk
    params = [to_status, now()]
    placeholders = ", ".join(["%s"] * len(deposit_ids))
    params += [id_field.get_db_prep_value(pk, connection) for pk in deposit_ids]
    params.append(from_status)
    held = " AND hold_reason = ''" if require_not_held else ""
    table = DepositRequest._meta.db_table
    sql = (
        f"UPDATE {table} SET status = %s, updated_at = %s "  # noqa: S608 - no user input
        f"WHERE id IN ({placeholders}) AND status = %s{held} RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    moved = [id_field.to_python(row[0]) for row in rows]
    at = now()
    DepositTransition.objects.bulk_create(
        [
            DepositTransition(
                deposit_id=pk,
                from_status=from_status,
                to_status=to_status,
                source=source,
                note=note,
                at=at,
            )
            for pk in moved
        ]
    )
    if moved:
        _after_enter(to_status)
    return moved


# --- Payment confirmed (DESIGN §5.1) -------------------------------------------------------


def _confirmed_updates(*, psp_reference: str, psp_channel: str, actor) -> dict:
    return {
        "psp_reference": psp_reference,
        "psp_channel": psp_channel,
        "fiat_confirmed_at": now(),
        "fiat_confirmed_by": actor,
        "next_poll_at": None,
        "status_reason": "",
    }


def deposit_payment_confirm(
    *,
    deposit_id,
    amount_tzs: int,
    psp_reference: str,
    psp_channel: str = "",
    source: str,
    actor=None,
    note: str = "",
    metadata: dict | None = None,
) -> str:
    """``submitted`` → lane: an authentic payment confirmation."""
    target = deposit_lane(amount_tzs=amount_tzs)
    _transition(
        deposit_id=deposit_id,
        allowed=(S.SUBMITTED,),
        to_status=target,
        source=source,
        actor=actor,
        note=note or "payment confirmed",
        metadata=metadata,
        updates=_confirmed_updates(
            psp_reference=psp_reference, psp_channel=psp_channel, actor=actor
        ),
    )
    return target


def deposit_recover(
    *,
    deposit_id,
    amount_tzs: int,
    psp_reference: str,
    psp_channel: str = "",
    source: str,
    actor=None,
    metadata: dict | None = None,
) -> str:
    """``cancelled`` → lane: a verified late payment reopens the deposit."""
    target = deposit_lane(amount_tzs=amount_tzs)
    _transition(
        deposit_id=deposit_id,
        allowed=(S.CANCELLED,),
        to_status=target,
        source=source,
        actor=actor,
        note="late payment verified: reopened",
        metadata=metadata,
        updates=_confirmed_updates(
            psp_reference=psp_reference, psp_channel=psp_channel, actor=actor
        ),
    )
    return target


def deposit_release_rejected(
    *, deposit_id, amount_tzs: int, psp_reference: str, psp_channel: str = "", actor, note: str = ""
) -> str:
    """``rejected`` → lane: compliance releases a paid deposit (under dual control)."""
    target = deposit_lane(amount_tzs=amount_tzs)
    _transition(
        deposit_id=deposit_id,
        allowed=(S.REJECTED,),
        to_status=target,
        source=Source.ADMIN,
        actor=actor,
        note=note or "released after rejection",
        updates=_confirmed_updates(
            psp_reference=psp_reference, psp_channel=psp_channel, actor=actor
        ),
    )
    return target


def deposit_cancel(*, deposit_id, reason: str, source: str, actor=None, next_poll_at=None) -> None:
    _transition(
        deposit_id=deposit_id,
        allowed=(S.SUBMITTED,),
        to_status=S.CANCELLED,
        source=source,
        actor=actor,
        note=reason,
        updates={"status_reason": reason, "cancelled_at": now(), "next_poll_at": next_poll_at},
    )


def deposit_reject(*, deposit_id, reason: str, actor) -> None:
    _transition(
        deposit_id=deposit_id,
        allowed=(S.SUBMITTED,),
        to_status=S.REJECTED,
        source=Source.ADMIN,
        actor=actor,
        note=reason,
        updates={"status_reason": reason, "next_poll_at": None},
    )


def deposit_refund(*, deposit_id, allowed: Iterable[str], actor, note: str) -> None:
    """→ ``refunded``: an off-system refund recorded. Callers check the preconditions
    (deposits.services.operator for unpaid/unminted states, minting for the mint states)."""
    _transition(
        deposit_id=deposit_id,
        allowed=allowed,
        to_status=S.REFUNDED,
        source=Source.ADMIN,
        actor=actor,
        note=note,
        updates={"next_poll_at": None, "hold_reason": ""},
        require_not_held=False,
    )


# --- Transitions the minting pipeline calls ------------------------------------------------


def deposits_claim(*, deposit_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """``mint_pending`` → ``mint_processing`` for a signed batch (DESIGN §7.1)."""
    return deposits_transition_batch(
        deposit_ids=deposit_ids,
        from_status=S.MINT_PENDING,
        to_status=S.MINT_PROCESSING,
        source=Source.WORKER,
        note="claimed into a signed batch",
    )


def deposit_back_to_pending(*, deposit_id, note: str = "claim lease expired") -> None:
    _transition(
        deposit_id=deposit_id,
        allowed=(S.MINT_PROCESSING,),
        to_status=S.MINT_PENDING,
        source=Source.WORKER,
        note=note,
        require_not_held=False,
    )


def deposit_mark_minted(
    *,
    deposit_id,
    tx_hash: str,
    source: str,
    minted_at=None,
    allowed: Iterable[str] = (S.MINT_PROCESSING,),
    actor=None,
    note: str = "",
) -> None:
    """→ ``minted``. Chain facts are always recorded, held or not (DESIGN §4)."""
    _transition(
        deposit_id=deposit_id,
        allowed=allowed,
        to_status=S.MINTED,
        source=source,
        actor=actor,
        note=note or f"minted in {tx_hash}",
        updates={"mint_tx_hash": tx_hash, "minted_at": minted_at or now()},
        require_not_held=False,
    )


@transaction.atomic
def deposits_mark_minted_batch(*, minted: dict[uuid.UUID, str], minted_at) -> list[uuid.UUID]:
    """``mint_processing`` → ``minted`` for many deposits of confirmed worker mints (the batch
    form), with each deposit's ``mint_tx_hash``. Held or not: chain facts are recorded.
    Returns the ids that moved; the caller records the others one by one."""
    moved = deposits_transition_batch(
        deposit_ids=list(minted),
        from_status=S.MINT_PROCESSING,
        to_status=S.MINTED,
        source=Source.WORKER,
        note="mint confirmed",
        require_not_held=False,
    )
    rows = [DepositRequest(pk=pk, mint_tx_hash=minted[pk], minted_at=minted_at) for pk in moved]
    DepositRequest.objects.bulk_update(rows, ["mint_tx_hash", "minted_at"], batch_size=500)
    return moved


def deposit_mark_failed(*, deposit_id, reason: str) -> None:
    _transition(
        deposit_id=deposit_id,
        allowed=(S.MINT_PROCESSING,),
        to_status=S.MINT_FAILED,
        source=Source.WORKER,
        note=reason,
        require_not_held=False,
    )


def deposit_retry(*, deposit_id, actor=None) -> None:
    _transition(
        deposit_id=deposit_id,
        allowed=(S.MINT_FAILED,),
        to_status=S.MINT_PENDING,
        source=Source.ADMIN if actor else Source.SYSTEM,
        actor=actor,
        note="retry",
    )


def deposit_route_to_safe(*, deposit_id, actor, reason: str) -> None:
    _transition(
        deposit_id=deposit_id,
        allowed=(S.MINT_PENDING, S.MINT_FAILED),
        to_status=S.MINT_REQUIRES_SAFE,
        source=Source.ADMIN,
        actor=actor,
        note=reason,
    )


def deposits_route_to_safe_for_lane(*, deposit_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """``mint_pending`` → ``mint_requires_safe`` for the deposits still waiting when MINT_LANE
    is ``safe_only`` (the batch form; the system acts, the switch's request names the people).
    A deposit claimed into a batch meanwhile is ``mint_processing`` and stays; a held one
    stays until its release (the pipeline routes it then). Returns the ids that moved."""
    return deposits_transition_batch(
        deposit_ids=deposit_ids,
        from_status=S.MINT_PENDING,
        to_status=S.MINT_REQUIRES_SAFE,
        source=Source.SYSTEM,
        note=LANE_SAFE_ONLY_NOTE,
    )


def deposit_route_to_worker(*, deposit_id, actor, reason: str) -> None:
    _transition(
        deposit_id=deposit_id,
        allowed=(S.MINT_REQUIRES_SAFE,),
        to_status=S.MINT_PENDING,
        source=Source.ADMIN,
        actor=actor,
        note=reason,
    )


# --- Holds (from == to) ----------------------------------------------------------------------


@transaction.atomic
def deposit_hold_set(
    *, deposit_id, reason: str, source: str, actor=None, details: dict | None = None
) -> bool:
    """Put a deposit on hold; True if this call set it (False: already held)."""
    current = (
        DepositRequest.objects.select_for_update()
        .filter(pk=deposit_id)
        .values("status", "hold_reason")
        .first()
    )
    if current is None or current["status"] not in HOLDABLE:
        raise TransitionRefused(
            deposit_id, to="held", found=None if current is None else current["status"]
        )
    if current["hold_reason"]:
        return False
    updated = DepositRequest.objects.filter(
        pk=deposit_id, status=current["status"], hold_reason=""
    ).update(hold_reason=reason[:200], hold_details=details or {}, updated_at=now())
    if updated != 1:
        return False
    DepositTransition.objects.create(
        deposit_id=deposit_id,
        from_status=current["status"],
        to_status=current["status"],
        source=source,
        actor=actor,
        note=f"hold set: {reason}",
        metadata=details or {},
    )
    return True


@transaction.atomic
def deposit_hold_clear(*, deposit_id, source: str, actor=None, note: str = "") -> None:
    current = (
        DepositRequest.objects.select_for_update()
        .filter(pk=deposit_id)
        .values("status", "hold_reason")
        .first()
    )
    if current is None or not current["hold_reason"]:
        raise TransitionRefused(
            deposit_id, to="released", found=None if current is None else current["status"]
        )
    DepositRequest.objects.filter(pk=deposit_id).update(
        hold_reason="", hold_details={}, updated_at=now()
    )
    DepositTransition.objects.create(
        deposit_id=deposit_id,
        from_status=current["status"],
        to_status=current["status"],
        source=source,
        actor=actor,
        note=note or f"hold cleared: {current['hold_reason']}",
    )
