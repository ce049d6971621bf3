"""Operator actions: cancel, orphan dismissal, and the four-eyes actions that need two
people (hold release, orphan attach, refund record), through services and commands."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.models import AdminAction, DualControlRequest
from core.services import dual_control_approve
from deposits.models import DepositRequest, LimitEvent, OrphanPayment
from deposits.services.operator import (
    deposit_cancel_by_operator,
    deposit_hold_release_request,
    deposit_refund_record_request,
    orphan_attach_request,
    orphan_dismiss,
)
from deposits.services.transitions import deposit_hold_set
from tests.deposits.conftest import PHONE


def _mismatch_hold(deposit, paid=4_000, ref="TXPAID1"):
    deposit_hold_set(
        deposit_id=deposit.pk,
        source="poll",
        reason=f"amount mismatch: paid {paid} TZS for a deposit of {deposit.amount_tzs} TZS",
        details={
            "paid_amount_tzs": paid,
            "psp_reference": ref,
            "msisdn": "255712345678",
            "channel": "MPESA-TZ",
        },
    )


@pytest.mark.django_db
def test_mismatch_release_turns_the_payment_into_an_orphan_attached_to_a_new_deposit(
    make_deposit, compliance, compliance_two, settings
):
    settings.USER_DAILY_LIMIT_TZS = 5_000  # the recovery may breach it: recorded, not refused
    deposit = make_deposit(amount=5_000)
    _mismatch_hold(deposit, paid=4_000)
    request = deposit_hold_release_request(
        deposit_id=deposit.pk,
        resolution="cancel_and_orphan",
        evidence="customer paid 4,000",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert (deposit.status, deposit.hold_reason) == ("cancelled", "")
    orphan = OrphanPayment.objects.get()
    assert (orphan.reason, orphan.amount_tzs, orphan.status) == (
        "amount mismatch",
        4_000,
        "matched",
    )
    replacement = orphan.matched_deposit
    assert (replacement.amount_tzs, replacement.status, replacement.psp_reference) == (
        4_000,
        "mint_pending",
        "TXPAID1",
    )
    assert replacement.wallet_id == deposit.wallet_id and replacement.buyer_phone == PHONE
    assert LimitEvent.objects.filter(kind="recovery", deposit=replacement).exists()


@pytest.mark.django_db
def test_a_mismatch_is_never_released_as_is(make_deposit, compliance):
    deposit = make_deposit()
    _mismatch_hold(deposit)
    with pytest.raises(ServiceError, match="never released as is"):
        deposit_hold_release_request(
            deposit_id=deposit.pk, resolution="clear", evidence="", maker=compliance
        )
    assert not DualControlRequest.objects.exists()


@pytest.mark.django_db
def test_hold_release_needs_two_people(make_deposit, compliance):
    deposit = make_deposit()
    deposit_hold_set(
        deposit_id=deposit.pk, reason="phone mismatch: paid from another number", source="poll"
    )
    request = deposit_hold_release_request(
        deposit_id=deposit.pk,
        resolution="clear",
        evidence="same person, second SIM",
        maker=compliance,
    )
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=compliance)
    deposit.refresh_from_db()
    assert deposit.hold_reason.startswith("phone mismatch")


@pytest.mark.django_db
def test_hold_release_by_refund_records_the_refund(make_deposit, compliance, superadmin):
    deposit = make_deposit()
    _mismatch_hold(deposit)
    request = deposit_hold_release_request(
        deposit_id=deposit.pk,
        resolution="refund",
        evidence="refunded by M-Pesa reversal",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=superadmin)
    deposit.refresh_from_db()
    assert (deposit.status, deposit.hold_reason) == ("refunded", "")


@pytest.mark.django_db
def test_orphan_attach_needs_two_people_and_matching_amount_and_phone(
    make_deposit, compliance, compliance_two, amina
):
    orphan = OrphanPayment.objects.create(
        psp_reference="TXORPHAN", amount_tzs=7_000, phone="255712345678", reason="second payment"
    )
    wrong_amount = make_deposit(amount=6_000)
    with pytest.raises(ServiceError, match="amounts must match"):
        orphan_attach_request(
            orphan_id=orphan.pk, deposit_id=wrong_amount.pk, evidence="", maker=compliance
        )
    other_phone = make_deposit(amount=7_000, phone="0754000111")
    with pytest.raises(ServiceError, match="another phone"):
        orphan_attach_request(
            orphan_id=orphan.pk, deposit_id=other_phone.pk, evidence="", maker=compliance
        )
    target = make_deposit(amount=7_000)
    request = orphan_attach_request(
        orphan_id=orphan.pk, deposit_id=target.pk, evidence="customer asked", maker=compliance
    )
    with pytest.raises(PermissionRefused):
        dual_control_approve(request_id=request.pk, checker=compliance)
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    target.refresh_from_db()
    orphan.refresh_from_db()
    assert (target.status, target.psp_reference) == ("mint_pending", "TXORPHAN")
    assert (orphan.status, orphan.matched_deposit_id) == ("matched", target.pk)


@pytest.mark.django_db
@pytest.mark.forced_status
def test_refund_record_needs_two_people_and_an_unpaid_state(
    make_deposit, compliance, compliance_two
):
    deposit = make_deposit()
    with pytest.raises(ServiceError, match="Describe the refund"):
        deposit_refund_record_request(deposit_id=deposit.pk, evidence=" ", maker=compliance)
    request = deposit_refund_record_request(
        deposit_id=deposit.pk, evidence="bank reversal 77", maker=compliance
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert deposit.status == "refunded"
    minted = make_deposit(amount=2_000)
    DepositRequest.objects.filter(pk=minted.pk).update(status="minted")
    with pytest.raises(ConflictError, match="only for submitted, cancelled or rejected"):
        deposit_refund_record_request(deposit_id=minted.pk, evidence="x", maker=compliance)


@pytest.mark.django_db
def test_operator_cancel_needs_the_role_and_a_reason(make_deposit, compliance, nmb_admin):
    deposit = make_deposit()
    with pytest.raises(PermissionRefused):
        deposit_cancel_by_operator(deposit_id=deposit.pk, actor=nmb_admin, reason="x")
    with pytest.raises(ServiceError, match="needs a reason"):
        deposit_cancel_by_operator(deposit_id=deposit.pk, actor=compliance, reason="")
    deposit_cancel_by_operator(deposit_id=deposit.pk, actor=compliance, reason="duplicate")
    deposit.refresh_from_db()
    assert (deposit.status, deposit.status_reason) == ("cancelled", "duplicate")
    assert AdminAction.objects.filter(action="deposit.cancel").count() == 1


@pytest.mark.django_db
def test_orphan_dismiss_needs_a_note_and_happens_once(compliance):
    orphan = OrphanPayment.objects.create(psp_reference="TX9", amount_tzs=1_000, reason="x")
    with pytest.raises(ServiceError, match="needs a reason"):
        orphan_dismiss(orphan_id=orphan.pk, actor=compliance, note="")
    orphan_dismiss(orphan_id=orphan.pk, actor=compliance, note="refunded by ZenoPay")
    with pytest.raises(ConflictError):
        orphan_dismiss(orphan_id=orphan.pk, actor=compliance, note="again")


@pytest.mark.django_db
def test_four_eyes_commands_end_to_end(make_deposit, compliance, compliance_two, capsys):
    deposit = make_deposit()
    with pytest.raises(CommandError, match="Describe the refund"):
        call_command("deposit_refund_record", str(deposit.pk), evidence=" ", actor=compliance.email)
    call_command(
        "deposit_refund_record", str(deposit.pk), evidence="reversal", actor=compliance.email
    )
    request_id = capsys.readouterr().out.strip()
    with pytest.raises(CommandError, match="different person"):
        call_command("dual_control_approve", request_id, actor=compliance.email)
    call_command("dual_control_approve", request_id, actor=compliance_two.email)
    deposit.refresh_from_db()
    assert deposit.status == "refunded"


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("deposit_cancel", {"reason": "x"}),
        ("deposit_hold_release", {"resolution": "clear"}),
        ("deposit_refund_record", {"evidence": "x"}),
    ],
)
@pytest.mark.django_db
def test_operator_commands_refuse_a_customer(make_deposit, amina, command, args):
    deposit = make_deposit()
    with pytest.raises(CommandError):
        call_command(command, str(deposit.pk), actor=amina.email, **args)
    deposit.refresh_from_db()
    assert deposit.status == "submitted"


@pytest.mark.django_db
def test_a_mobile_money_orphan_is_not_attached_to_a_bank_transfer(
    make_deposit, compliance, nmb_bank
):
    orphan = OrphanPayment.objects.create(
        psp_reference="TXMM", amount_tzs=3_000, reason="second payment"
    )
    transfer = make_deposit(amount=3_000, provider="bank_transfer", bank=nmb_bank, phone="")
    with pytest.raises(ServiceError, match="same payment method"):
        orphan_attach_request(
            orphan_id=orphan.pk, deposit_id=transfer.pk, evidence="", maker=compliance
        )


@pytest.mark.django_db
def test_a_four_eyes_request_is_validated_again_at_approval(
    make_deposit, compliance, compliance_two
):
    deposit = make_deposit()
    deposit_hold_set(
        deposit_id=deposit.pk, reason="phone mismatch: paid from another number", source="poll"
    )
    request = deposit_hold_release_request(
        deposit_id=deposit.pk, resolution="clear", evidence="same person", maker=compliance
    )
    from deposits.services.transitions import deposit_hold_clear

    deposit_hold_clear(deposit_id=deposit.pk, source="admin", note="cleared another way")
    with pytest.raises(ConflictError, match="not on hold"):
        dual_control_approve(request_id=request.pk, checker=compliance_two)
