"""The bank-transfer path: a bank approval (bank_admin of that bank) and a platform approval
(platform_compliance), by two different people, in either order; either may reject."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.models import AdminAction
from core.services import dual_control_approve
from deposits.models import DepositApproval, DepositRequest, OrphanPayment
from deposits.services.bank import (
    deposit_bank_approve,
    deposit_bank_reject,
    deposit_platform_approve,
    deposit_platform_reject,
)
from deposits.services.operator import deposit_hold_release_request
from tests.factories import bank_admin

BANK = DepositRequest.Provider.BANK_TRANSFER


@pytest.fixture
def transfer(make_deposit, nmb_bank):
    return make_deposit(provider=BANK, bank=nmb_bank, phone="")


@pytest.mark.django_db
@pytest.mark.parametrize("bank_first", [True, False])
def test_both_approvals_by_two_people_advance_the_deposit(
    transfer, nmb_admin, compliance, bank_first
):
    steps = [
        lambda: deposit_bank_approve(
            deposit_id=transfer.pk,
            actor=nmb_admin,
            bank_reference="NMB-778899",
            amount_received_tzs=transfer.amount_tzs,
        ),
        lambda: deposit_platform_approve(deposit_id=transfer.pk, actor=compliance),
    ]
    if not bank_first:
        steps.reverse()
    assert steps[0]() is None
    transfer.refresh_from_db()
    assert transfer.status == "submitted"
    assert steps[1]() == "mint_pending"
    transfer.refresh_from_db()
    assert (transfer.status, transfer.psp_reference) == ("mint_pending", "NMB-778899")
    assert transfer.fiat_confirmed_at is not None
    assert AdminAction.objects.filter(target_id=str(transfer.pk)).count() == 2


@pytest.mark.django_db
def test_a_large_transfer_goes_to_the_safe_lane(make_deposit, nmb_bank, nmb_admin, compliance):
    deposit = make_deposit(provider=BANK, bank=nmb_bank, phone="", amount=9_000)
    deposit_bank_approve(
        deposit_id=deposit.pk,
        actor=nmb_admin,
        bank_reference="NMB-1",
        amount_received_tzs=deposit.amount_tzs,
    )
    assert deposit_platform_approve(deposit_id=deposit.pk, actor=compliance) == "mint_requires_safe"


@pytest.mark.django_db
def test_the_same_person_cannot_give_both_approvals(transfer, superadmin):
    deposit_bank_approve(
        deposit_id=transfer.pk,
        actor=superadmin,
        bank_reference="NMB-2",
        amount_received_tzs=transfer.amount_tzs,
    )
    with pytest.raises(PermissionRefused, match="two different people"):
        deposit_platform_approve(deposit_id=transfer.pk, actor=superadmin)
    transfer.refresh_from_db()
    assert transfer.status == "submitted"
    assert DepositApproval.objects.filter(deposit=transfer).count() == 1


@pytest.mark.django_db
def test_a_bank_admin_of_another_bank_is_refused(transfer, other_bank_admin):
    with pytest.raises(PermissionRefused, match="another bank"):
        deposit_bank_approve(
            deposit_id=transfer.pk,
            actor=other_bank_admin,
            bank_reference="X-1",
            amount_received_tzs=transfer.amount_tzs,
        )
    assert not DepositApproval.objects.exists()


@pytest.mark.django_db
def test_a_bank_admin_without_bank_staff_and_a_compliance_officer_cannot_approve_fiat(
    transfer, compliance
):
    loose = bank_admin(email="loose@ntzs.test")
    for actor in (loose, compliance):
        with pytest.raises(PermissionRefused):
            deposit_bank_approve(
                deposit_id=transfer.pk,
                actor=actor,
                bank_reference="X-2",
                amount_received_tzs=transfer.amount_tzs,
            )


@pytest.mark.django_db
def test_a_bank_admin_cannot_give_the_platform_approval(transfer, nmb_admin):
    with pytest.raises(PermissionRefused, match="may not review bank transfers as compliance"):
        deposit_platform_approve(deposit_id=transfer.pk, actor=nmb_admin)


@pytest.mark.django_db
def test_one_bank_reference_confirms_one_deposit(make_deposit, nmb_bank, nmb_admin, compliance):
    first = make_deposit(provider=BANK, bank=nmb_bank, phone="", amount=2_000)
    second = make_deposit(provider=BANK, bank=nmb_bank, phone="", amount=3_000)
    deposit_bank_approve(
        deposit_id=first.pk,
        actor=nmb_admin,
        bank_reference="NMB-SAME",
        amount_received_tzs=first.amount_tzs,
    )
    deposit_platform_approve(deposit_id=first.pk, actor=compliance)
    with pytest.raises(ConflictError, match="already confirmed another deposit"):
        deposit_bank_approve(
            deposit_id=second.pk,
            actor=nmb_admin,
            bank_reference="NMB-SAME",
            amount_received_tzs=second.amount_tzs,
        )


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["bank", "platform"])
def test_either_reviewer_can_reject_with_a_reason(transfer, nmb_admin, compliance, who):
    reject, actor = (
        (deposit_bank_reject, nmb_admin) if who == "bank" else (deposit_platform_reject, compliance)
    )
    with pytest.raises(ServiceError, match="reason"):
        reject(deposit_id=transfer.pk, actor=actor, reason="  ")
    reject(deposit_id=transfer.pk, actor=actor, reason="no transfer received")
    transfer.refresh_from_db()
    assert (transfer.status, transfer.status_reason) == ("rejected", "no transfer received")


@pytest.mark.django_db
def test_a_zenopay_deposit_is_not_reviewed_as_a_bank_transfer(make_deposit, compliance):
    deposit = make_deposit()
    with pytest.raises(ServiceError, match="not a bank transfer"):
        deposit_platform_approve(deposit_id=deposit.pk, actor=compliance)


@pytest.mark.django_db
def test_commands_approve_and_refuse_with_a_sentence(
    transfer, nmb_admin, compliance, other_bank_admin
):
    with pytest.raises(CommandError, match="another bank"):
        call_command(
            "bank_approve",
            str(transfer.pk),
            bank_reference="R-9",
            amount="5000",
            actor=other_bank_admin.email,
        )
    with pytest.raises(CommandError, match="There is no deposit"):
        call_command(
            "bank_approve", "nope", bank_reference="R-9", amount="5000", actor=nmb_admin.email
        )
    with pytest.raises(CommandError, match="bank's reference"):
        call_command(
            "bank_approve",
            str(transfer.pk),
            bank_reference=" ",
            amount="5000",
            actor=nmb_admin.email,
        )
    call_command(
        "bank_approve", str(transfer.pk), bank_reference="R-9", amount="5000", actor=nmb_admin.email
    )
    with pytest.raises(CommandError, match="already given"):
        call_command("bank_reject", str(transfer.pk), reason="x", actor=nmb_admin.email)
    call_command("platform_approve", str(transfer.pk), actor=compliance.email)
    transfer.refresh_from_db()
    assert transfer.status == "mint_pending"


# --- The amount received (a mismatch holds; its release never drops the money) -------------


def _mismatch(transfer, nmb_admin, received=4_000, ref="NMB-4000"):
    assert (
        deposit_bank_approve(
            deposit_id=transfer.pk,
            actor=nmb_admin,
            bank_reference=ref,
            amount_received_tzs=received,
        )
        is None
    )
    transfer.refresh_from_db()
    return transfer


@pytest.mark.django_db
def test_a_bank_approval_with_another_amount_holds_the_deposit(transfer, nmb_admin, compliance):
    _mismatch(transfer, nmb_admin)

    assert transfer.status == "submitted"
    assert transfer.hold_reason == ("amount mismatch: received 4000 TZS for a deposit of 5000 TZS")
    assert (transfer.hold_details["paid_amount_tzs"], transfer.hold_details["psp_reference"]) == (
        4_000,
        "NMB-4000",
    )
    approval = DepositApproval.objects.get(deposit=transfer)
    assert (approval.type, approval.amount_received_tzs, approval.bank_reference) == (
        "bank",
        4_000,
        "NMB-4000",
    )
    with pytest.raises(ConflictError, match="on hold"):
        deposit_platform_approve(deposit_id=transfer.pk, actor=compliance)
    transfer.refresh_from_db()
    assert (transfer.status, transfer.psp_reference) == ("submitted", "")


@pytest.mark.django_db
def test_a_bank_mismatch_released_becomes_an_orphan_attached_to_a_new_deposit(
    transfer, nmb_admin, compliance, compliance_two, nmb_bank
):
    _mismatch(transfer, nmb_admin)
    request = deposit_hold_release_request(
        deposit_id=transfer.pk,
        resolution="cancel_and_orphan",
        evidence="the customer sent 4,000",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)

    transfer.refresh_from_db()
    assert (transfer.status, transfer.hold_reason) == ("cancelled", "")
    orphan = OrphanPayment.objects.get()
    assert (
        orphan.provider,
        orphan.psp_reference,
        orphan.amount_tzs,
        orphan.status,
        orphan.reason,
    ) == (BANK, "NMB-4000", 4_000, "matched", "amount mismatch")
    replacement = orphan.matched_deposit
    assert (
        replacement.amount_tzs,
        replacement.status,
        replacement.psp_reference,
        replacement.bank_id,
        replacement.payment_provider,
    ) == (4_000, "mint_pending", "NMB-4000", nmb_bank.pk, BANK)


@pytest.mark.django_db
def test_a_bank_mismatch_released_by_refund_records_the_refund(
    make_deposit, transfer, nmb_admin, compliance, compliance_two, nmb_bank
):
    _mismatch(transfer, nmb_admin)
    request = deposit_hold_release_request(
        deposit_id=transfer.pk,
        resolution="refund",
        evidence="returned by NMB, ref RET-77",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)

    transfer.refresh_from_db()
    assert (transfer.status, transfer.hold_reason) == ("refunded", "")
    refunded = OrphanPayment.objects.get()
    assert (refunded.provider, refunded.psp_reference, refunded.amount_tzs, refunded.status) == (
        BANK,
        "NMB-4000",
        4_000,
        "dismissed",
    )
    # The refunded money can never be credited to another deposit.
    other = make_deposit(provider=BANK, bank=nmb_bank, phone="", amount=4_000)
    with pytest.raises(ConflictError, match="dismissed or refunded"):
        deposit_bank_approve(
            deposit_id=other.pk,
            actor=nmb_admin,
            bank_reference="NMB-4000",
            amount_received_tzs=4_000,
        )


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["", "abc", "-5", "0", "4.5", None])
def test_a_bank_approval_needs_the_amount_received(transfer, nmb_admin, amount):
    with pytest.raises(ServiceError, match="amount the bank received"):
        deposit_bank_approve(
            deposit_id=transfer.pk,
            actor=nmb_admin,
            bank_reference="R-1",
            amount_received_tzs=amount,
        )
    assert not DepositApproval.objects.exists()


@pytest.mark.django_db
def test_the_bank_approve_command_takes_the_amount_and_says_when_it_holds(
    transfer, nmb_admin, capsys
):
    call_command(
        "bank_approve",
        str(transfer.pk),
        bank_reference="R-10",
        amount="4,500",
        actor=nmb_admin.email,
    )

    assert "on hold (amount mismatch: received 4500 TZS" in capsys.readouterr().out
    transfer.refresh_from_db()
    assert transfer.hold_details["paid_amount_tzs"] == 4_500


@pytest.mark.django_db
def test_an_overlong_bank_reference_is_refused_not_clipped(transfer, nmb_admin):
    with pytest.raises(ServiceError, match="at most 100 characters"):
        deposit_bank_approve(
            deposit_id=transfer.pk,
            actor=nmb_admin,
            bank_reference="R" * 101,
            amount_received_tzs=transfer.amount_tzs,
        )
    with pytest.raises(ServiceError, match="control characters"):
        deposit_bank_approve(
            deposit_id=transfer.pk,
            actor=nmb_admin,
            bank_reference="R-1\x00",
            amount_received_tzs=transfer.amount_tzs,
        )
    assert not DepositApproval.objects.exists()
