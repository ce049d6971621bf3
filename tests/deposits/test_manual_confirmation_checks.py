"""Manual confirmation (DESIGN §5.1): the transaction id is checked against other deposits
and against orphan payments — a refunded, dismissed or already attached payment never credits
another deposit — and ZenoPay answering 401, 403, 408, 429 or 5xx at approval refuses it
(ZenoPay scripted at the HTTP level with ``zenopay_fake``)."""

from __future__ import annotations

import pytest

from core.exceptions import ConflictError, ServiceError
from core.services import dual_control_approve
from deposits.models import OrphanPayment
from deposits.services.operator import (
    deposit_confirm_manual_request,
    deposit_hold_release_request,
)
from deposits.services.transitions import deposit_hold_set

NOT_FOUND = {"result": "FAIL", "resultcode": "404", "message": "Order not found", "data": []}


def _refunded_payment(make_deposit, compliance, compliance_two, ref="TXREFUNDED"):
    """A mismatched payment of 4,000 TZS, refunded at the hold release (two people)."""
    paid = make_deposit(amount=5_000)
    deposit_hold_set(
        deposit_id=paid.pk,
        source="poll",
        reason="amount mismatch: paid 4000 TZS for a deposit of 5000 TZS",
        details={
            "paid_amount_tzs": 4_000,
            "psp_reference": ref,
            "msisdn": "255712345678",
            "channel": "MPESA-TZ",
        },
    )
    request = deposit_hold_release_request(
        deposit_id=paid.pk, resolution="refund", evidence="reversed on M-Pesa", maker=compliance
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    assert OrphanPayment.objects.get(psp_reference=ref).status == "dismissed"


def _ask(deposit, maker, transid):
    return deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid=transid,
        amount_tzs=deposit.amount_tzs,
        phone="",
        evidence="seen on the ZenoPay dashboard",
        maker=maker,
    )


@pytest.mark.django_db
def test_a_refunded_payments_reference_is_refused_for_another_deposit(
    make_deposit, compliance, compliance_two
):
    _refunded_payment(make_deposit, compliance, compliance_two)
    other = make_deposit(amount=4_000)

    with pytest.raises(ConflictError, match="TXREFUNDED cannot be credited.*dismissed or refunded"):
        _ask(other, compliance, "TXREFUNDED")

    other.refresh_from_db()
    assert (other.status, other.psp_reference) == ("submitted", "")


@pytest.mark.django_db
def test_a_payment_refunded_after_the_request_is_refused_at_approval(
    make_deposit, compliance, compliance_two, superadmin, zenopay_fake
):
    other = make_deposit(amount=4_000)
    request = _ask(other, compliance, "TXREFUNDED")
    _refunded_payment(make_deposit, compliance, compliance_two)
    zenopay_fake.reply(200, json=NOT_FOUND)

    with pytest.raises(ConflictError, match="dismissed or refunded"):
        dual_control_approve(request_id=request.pk, checker=superadmin)

    other.refresh_from_db()
    request.refresh_from_db()
    assert (other.status, request.decision) == ("submitted", "pending")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "match"),
    [
        ("matched", "already attached to deposit"),
        ("unmatched", "attach it with orphan_attach"),
    ],
)
def test_an_attached_or_waiting_orphan_payment_is_not_confirmed_by_hand(
    make_deposit, compliance, status, match
):
    attached_to = make_deposit(amount=3_000) if status == "matched" else None
    OrphanPayment.objects.create(
        psp_reference="TXORPHAN",
        amount_tzs=4_000,
        status=status,
        reason="second payment",
        matched_deposit=attached_to,
    )
    other = make_deposit(amount=4_000)

    with pytest.raises(ConflictError, match=match):
        _ask(other, compliance, "TXORPHAN")


@pytest.mark.django_db
@pytest.mark.parametrize("http_status", [401, 403, 408, 429, 500, 503])
def test_zenopay_refusing_to_answer_at_approval_refuses_the_confirmation(
    make_deposit, compliance, compliance_two, zenopay_fake, http_status
):
    deposit = make_deposit()
    request = _ask(deposit, compliance, "TXDASH401")
    zenopay_fake.reply(http_status, json={"status": "error", "message": "not now"})

    with pytest.raises(ConflictError, match=f"could not be asked.*HTTP {http_status}"):
        dual_control_approve(request_id=request.pk, checker=compliance_two)

    deposit.refresh_from_db()
    request.refresh_from_db()
    assert (deposit.status, deposit.psp_reference, request.decision) == ("submitted", "", "pending")


@pytest.mark.django_db
def test_no_data_for_the_order_at_approval_lets_the_evidence_stand(
    make_deposit, compliance, compliance_two, zenopay_fake
):
    deposit = make_deposit()
    request = _ask(deposit, compliance, "TXDASH404")
    zenopay_fake.reply(200, json=NOT_FOUND)

    dual_control_approve(request_id=request.pk, checker=compliance_two)

    deposit.refresh_from_db()
    assert (deposit.status, deposit.psp_reference) == ("mint_pending", "TXDASH404")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("http_status", "answer"),
    [
        (200, {"html": "<h1>maintenance</h1>"}),
        (200, {"result": "SUCCESS", "data": [{"order_id": "another-order"}]}),
        (200, {"result": "SUCCESS", "data": "not a list"}),
        (400, {"status": "error", "message": "bad request"}),
    ],
    ids=["unexpected-shape", "another-order", "data-not-a-list", "http-400"],
)
def test_an_answer_that_is_not_plainly_no_data_refuses_the_confirmation(
    make_deposit, compliance, compliance_two, zenopay_fake, http_status, answer
):
    deposit = make_deposit()
    request = _ask(deposit, compliance, "TXODD")
    zenopay_fake.reply(http_status, json=answer)

    with pytest.raises(ConflictError, match="could not be asked"):
        dual_control_approve(request_id=request.pk, checker=compliance_two)

    deposit.refresh_from_db()
    assert (deposit.status, deposit.psp_reference) == ("submitted", "")


@pytest.mark.django_db
def test_evidence_with_control_characters_is_stored_clean_and_a_phone_with_them_refused(
    make_deposit, compliance
):
    deposit = make_deposit()

    request = deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid="TXCLEAN",
        amount_tzs=deposit.amount_tzs,
        phone="",
        evidence="seen\x00 on the\u202e dashboard",
        maker=compliance,
    )
    assert request.evidence == "seen on the dashboard"

    with pytest.raises(ServiceError, match="phone number as the dashboard shows it"):
        deposit_confirm_manual_request(
            deposit_id=make_deposit(amount=6_000).pk,
            transid="TXCLEAN2",
            amount_tzs=6_000,
            phone="0712345678\x00",
            evidence="dashboard",
            maker=compliance,
        )


@pytest.mark.django_db
def test_a_held_payment_refunded_by_a_refund_record_is_refused_for_another_deposit(
    make_deposit, compliance, compliance_two
):
    from deposits.services.operator import deposit_refund_record_request

    held = make_deposit(amount=5_000)
    deposit_hold_set(
        deposit_id=held.pk,
        source="poll",
        reason="phone mismatch: paid from another number",
        details={"paid_amount_tzs": 5_000, "psp_reference": "TXHELDREFUND"},
    )
    request = deposit_refund_record_request(
        deposit_id=held.pk, evidence="reversed on M-Pesa, ref R-1", maker=compliance
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    held.refresh_from_db()
    assert held.status == "refunded"
    assert OrphanPayment.objects.get(psp_reference="TXHELDREFUND").status == "dismissed"

    other = make_deposit(amount=5_000)
    with pytest.raises(ConflictError, match="TXHELDREFUND cannot be credited"):
        _ask(other, compliance, "TXHELDREFUND")


@pytest.mark.django_db
def test_releasing_into_a_new_deposit_a_payment_already_recorded_as_an_orphan_is_refused(
    make_deposit, compliance, compliance_two
):
    OrphanPayment.objects.create(psp_reference="TXTWICE", amount_tzs=4_000, reason="second payment")
    held = make_deposit(amount=5_000)
    deposit_hold_set(
        deposit_id=held.pk,
        source="poll",
        reason="amount mismatch: paid 4000 TZS for a deposit of 5000 TZS",
        details={"paid_amount_tzs": 4_000, "psp_reference": "TXTWICE"},
    )
    request = deposit_hold_release_request(
        deposit_id=held.pk, resolution="cancel_and_orphan", evidence="seen twice", maker=compliance
    )

    with pytest.raises(ConflictError, match="already recorded as an orphan payment"):
        dual_control_approve(request_id=request.pk, checker=compliance_two)

    held.refresh_from_db()
    request.refresh_from_db()
    assert (held.status, bool(held.hold_reason), request.decision) == ("submitted", True, "pending")
