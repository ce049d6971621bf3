"""The state machine: every legal edge works through its service, every other edge is
refused, and every status change leaves exactly one transition row."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection

from deposits.exceptions import TransitionRefused
from deposits.models import DEPOSIT_STATUSES, DepositRequest, DepositTransition
from deposits.services import transitions as t

S = DepositRequest.Status
ALL = [s.value for s in S]


def test_the_status_list_of_the_check_constraint_is_the_model_choices():
    assert sorted(DEPOSIT_STATUSES) == sorted(ALL)


@pytest.mark.parametrize(
    ("amount", "setting", "lane"),
    [
        (8_999, 9_000, S.MINT_PENDING),
        (9_000, 9_000, S.MINT_REQUIRES_SAFE),
        (50_000, 9_000, S.MINT_REQUIRES_SAFE),
        (9_000, 0, S.MINT_REQUIRES_SAFE),
        (8_999, -5, S.MINT_PENDING),
        (8_999, "garbage", S.MINT_PENDING),
        (100, 100, S.MINT_REQUIRES_SAFE),
        (99, 100, S.MINT_PENDING),
    ],
)
def test_lane_rule_falls_back_to_the_default_never_to_zero(db, settings, amount, setting, lane):
    # db: the rule reads MINT_LANE's runtime override (none here: the threshold decides).
    settings.SAFE_MINT_THRESHOLD_TZS = setting
    assert t.deposit_lane(amount_tzs=amount) == lane


def _force_status(deposit, status, hold=""):
    # Test set-up only: place a deposit in a status without walking the whole path.
    DepositRequest.objects.filter(pk=deposit.pk).update(status=status, hold_reason=hold)


# One caller per target status, with the arguments it needs.
def _move(deposit, to):
    kw = {"deposit_id": deposit.pk}
    if to in (S.MINT_PENDING, S.MINT_REQUIRES_SAFE) and deposit.status == S.SUBMITTED:
        return t.deposit_payment_confirm(
            **kw,
            amount_tzs=deposit.amount_tzs,
            psp_reference="REF" + str(deposit.pk)[:8],
            source="poll",
        )
    callers = {
        (S.CANCELLED, S.MINT_PENDING): lambda: t.deposit_recover(
            **kw,
            amount_tzs=deposit.amount_tzs,
            psp_reference="R" + str(deposit.pk)[:8],
            source="poll",
        ),
        (S.REJECTED, S.MINT_PENDING): lambda: t.deposit_release_rejected(
            **kw, amount_tzs=deposit.amount_tzs, psp_reference="R" + str(deposit.pk)[:8], actor=None
        ),
        (S.SUBMITTED, S.CANCELLED): lambda: t.deposit_cancel(**kw, reason="r", source="admin"),
        (S.SUBMITTED, S.REJECTED): lambda: t.deposit_reject(**kw, reason="r", actor=None),
        (S.MINT_PENDING, S.MINT_PROCESSING): lambda: t.deposits_claim(deposit_ids=[deposit.pk]),
        (S.MINT_PROCESSING, S.MINT_PENDING): lambda: t.deposit_back_to_pending(**kw),
        (S.MINT_PROCESSING, S.MINTED): lambda: t.deposit_mark_minted(
            **kw, tx_hash="0x" + "ab" * 32, source="worker"
        ),
        (S.MINT_PROCESSING, S.MINT_FAILED): lambda: t.deposit_mark_failed(**kw, reason="x"),
        (S.MINT_FAILED, S.MINT_PENDING): lambda: t.deposit_retry(**kw),
        (S.MINT_PENDING, S.MINTED): lambda: t.deposit_mark_minted(
            **kw, tx_hash="0x" + "cd" * 32, source="worker", allowed=(S.MINT_PENDING,)
        ),
        (S.MINT_FAILED, S.MINTED): lambda: t.deposit_mark_minted(
            **kw, tx_hash="0x" + "ef" * 32, source="worker", allowed=(S.MINT_FAILED,)
        ),
        (S.MINT_PENDING, S.MINT_REQUIRES_SAFE): lambda: t.deposit_route_to_safe(
            **kw, actor=None, reason="key rotation"
        ),
        (S.MINT_FAILED, S.MINT_REQUIRES_SAFE): lambda: t.deposit_route_to_safe(
            **kw, actor=None, reason="incident"
        ),
        (S.MINT_REQUIRES_SAFE, S.MINT_PENDING): lambda: t.deposit_route_to_worker(
            **kw, actor=None, reason="back"
        ),
        (S.MINT_REQUIRES_SAFE, S.MINTED): lambda: t.deposit_mark_minted(
            **kw, tx_hash="0x" + "12" * 32, source="safe", allowed=(S.MINT_REQUIRES_SAFE,)
        ),
    }
    if to == S.REFUNDED:
        return t.deposit_refund(**kw, allowed=(deposit.status,), actor=None, note="refund")
    if (deposit.status, to) == (S.CANCELLED, S.MINT_REQUIRES_SAFE):
        return t.deposit_recover(
            **kw,
            amount_tzs=deposit.amount_tzs,
            psp_reference="R" + str(deposit.pk)[:8],
            source="poll",
        )
    if (deposit.status, to) == (S.REJECTED, S.MINT_REQUIRES_SAFE):
        return t.deposit_release_rejected(
            **kw, amount_tzs=deposit.amount_tzs, psp_reference="R" + str(deposit.pk)[:8], actor=None
        )
    return callers[(deposit.status, to)]()


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), sorted(t.EDGES))
@pytest.mark.forced_status
def test_every_legal_edge_moves_and_writes_one_transition(
    make_deposit, settings, from_status, to_status
):
    amount = 20_000 if to_status == S.MINT_REQUIRES_SAFE else 5_000
    deposit = make_deposit(amount=amount)
    _force_status(deposit, from_status)
    deposit.refresh_from_db()
    before = DepositTransition.objects.filter(deposit=deposit).count()
    _move(deposit, to_status)
    deposit.refresh_from_db()
    assert deposit.status == to_status
    rows = DepositTransition.objects.filter(deposit=deposit).order_by("at", "id")
    assert rows.count() == before + 1
    assert (rows.last().from_status, rows.last().to_status) == (from_status, to_status)


ILLEGAL = sorted(set(itertools.product(ALL, ALL)) - set(t.EDGES) - {(s, s) for s in ALL})


@pytest.mark.parametrize(("from_status", "to_status"), ILLEGAL)
def test_every_illegal_edge_is_refused_by_the_state_machine(from_status, to_status):
    with pytest.raises(ValueError, match="is not an edge"):
        t._require_edge(from_status, to_status)


SERVICES_BY_TARGET = {
    S.CANCELLED: lambda d: t.deposit_cancel(deposit_id=d.pk, reason="r", source="admin"),
    S.REJECTED: lambda d: t.deposit_reject(deposit_id=d.pk, reason="r", actor=None),
    S.MINT_PENDING: lambda d: t.deposit_payment_confirm(
        deposit_id=d.pk, amount_tzs=5_000, psp_reference="X1", source="poll"
    ),
    S.MINTED: lambda d: t.deposit_mark_minted(deposit_id=d.pk, tx_hash="0x1", source="worker"),
    S.MINT_FAILED: lambda d: t.deposit_mark_failed(deposit_id=d.pk, reason="x"),
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("from_status", "target"),
    [
        (f, to)
        for to in SERVICES_BY_TARGET
        for f in ALL
        if f != (S.MINT_PROCESSING if to in (S.MINTED, S.MINT_FAILED) else S.SUBMITTED)
    ],
)
@pytest.mark.forced_status
def test_services_refuse_a_deposit_in_a_status_they_do_not_move(make_deposit, from_status, target):
    deposit = make_deposit()
    _force_status(deposit, from_status)
    before = DepositTransition.objects.count()
    with pytest.raises(TransitionRefused):
        SERVICES_BY_TARGET[target](deposit)
    deposit.refresh_from_db()
    assert deposit.status == from_status
    assert DepositTransition.objects.count() == before


@pytest.mark.django_db
@pytest.mark.forced_status
def test_a_held_deposit_is_not_confirmed_cancelled_or_claimed(make_deposit):
    deposit = make_deposit()
    assert t.deposit_hold_set(deposit_id=deposit.pk, reason="phone mismatch", source="poll")
    assert not t.deposit_hold_set(deposit_id=deposit.pk, reason="again", source="poll")
    with pytest.raises(TransitionRefused, match="on hold"):
        SERVICES_BY_TARGET[S.MINT_PENDING](deposit)
    with pytest.raises(TransitionRefused, match="on hold"):
        SERVICES_BY_TARGET[S.CANCELLED](deposit)
    _force_status(deposit, S.MINT_PENDING, hold="blacklisted recipient")
    assert t.deposits_claim(deposit_ids=[deposit.pk]) == []
    holds = DepositTransition.objects.filter(deposit=deposit, note__startswith="hold set")
    assert [(h.from_status, h.to_status) for h in holds] == [(S.SUBMITTED, S.SUBMITTED)]


@pytest.mark.django_db
@pytest.mark.forced_status
def test_a_mint_receipt_is_recorded_even_on_a_held_deposit(make_deposit):
    deposit = make_deposit()
    _force_status(deposit, S.MINT_PROCESSING, hold="blacklisted recipient")
    t.deposit_mark_minted(deposit_id=deposit.pk, tx_hash="0x" + "aa" * 32, source="worker")
    deposit.refresh_from_db()
    assert deposit.status == S.MINTED and deposit.mint_tx_hash == "0x" + "aa" * 32


@pytest.mark.django_db
@pytest.mark.forced_status
def test_batch_claim_moves_exactly_the_claimable_rows_and_records_each(make_deposit, baraka):
    deposits = [make_deposit(amount=1_000 + i) for i in range(4)]
    for d in deposits:
        _force_status(d, S.MINT_PENDING)
    _force_status(deposits[1], S.MINT_PENDING, hold="blacklisted recipient")
    _force_status(deposits[2], S.MINT_FAILED)
    moved = t.deposits_claim(deposit_ids=[d.pk for d in deposits])
    assert set(moved) == {deposits[0].pk, deposits[3].pk}
    assert set(
        DepositRequest.objects.filter(status=S.MINT_PROCESSING).values_list("pk", flat=True)
    ) == set(moved)
    assert DepositTransition.objects.filter(to_status=S.MINT_PROCESSING).count() == 2
    assert connection.vendor == "postgresql"


@pytest.mark.django_db
def test_every_status_change_has_its_transition_row(make_deposit):
    deposit = make_deposit()
    t.deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=5_000, psp_reference="T1", source="poll"
    )
    t.deposits_claim(deposit_ids=[deposit.pk])
    t.deposit_mark_failed(deposit_id=deposit.pk, reason="reverted")
    t.deposit_retry(deposit_id=deposit.pk)
    history = list(
        DepositTransition.objects.filter(deposit=deposit)
        .order_by("at", "id")
        .values_list("from_status", "to_status")
    )
    assert history == [
        ("", S.SUBMITTED),
        (S.SUBMITTED, S.MINT_PENDING),
        (S.MINT_PENDING, S.MINT_PROCESSING),
        (S.MINT_PROCESSING, S.MINT_FAILED),
        (S.MINT_FAILED, S.MINT_PENDING),
    ]
    # Consecutive rows chain: each from-status is the previous to-status.
    for previous, current in itertools.pairwise(history):
        assert current[0] == previous[1]
