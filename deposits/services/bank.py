"""Bank transfers (DESIGN §5.1): a bank approval by a ``bank_admin`` of that bank (fiat
received, with the bank's reference) and a platform approval by ``platform_compliance``, by
two different people, in either order. Either may reject with a reason."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.roles import BANK_ADMIN, PLATFORM_COMPLIANCE, SUPER_ADMIN, user_has_role
from core.services import admin_action_record
from deposits.models import BankStaff, DepositApproval, DepositRequest
from deposits.selectors import deposit_get
from deposits.services.transitions import deposit_payment_confirm, deposit_reject

S = DepositRequest.Status
Type = DepositApproval.Type
Decision = DepositApproval.Decision


def _bank_transfer_open(deposit_id) -> DepositRequest:
    deposit = deposit_get(deposit_id=deposit_id, for_update=True)
    if deposit.payment_provider != DepositRequest.Provider.BANK_TRANSFER:
        raise ServiceError(_("Deposit %(id)s is not a bank transfer.") % {"id": deposit.pk})
    if deposit.status != S.SUBMITTED:
        raise ConflictError(_("Deposit %(id)s is %(status)s; only a submitted deposit can be "
                              "reviewed.") % {"id": deposit.pk, "status": deposit.status})
    if deposit.hold_reason:
        raise ConflictError(_("Deposit %(id)s is on hold (%(reason)s).") % {
            "id": deposit.pk, "reason": deposit.hold_reason})
    return deposit


def _require_bank_reviewer(actor, deposit: DepositRequest) -> None:
    if user_has_role(actor, SUPER_ADMIN):
        return
    if not user_has_role(actor, BANK_ADMIN):
        raise PermissionRefused(_("%(actor)s is not a bank admin.") % {"actor": actor})
    staff = BankStaff.objects.filter(user=actor).select_related("bank").first()
    if staff is None or staff.bank_id != deposit.bank_id:
        raise PermissionRefused(_("%(actor)s acts for another bank, not %(bank)s.") % {
            "actor": actor, "bank": deposit.bank.name})


def _require_platform_reviewer(actor) -> None:
    if not user_has_role(actor, PLATFORM_COMPLIANCE, SUPER_ADMIN):
        raise PermissionRefused(_("%(actor)s is not a compliance officer.") % {"actor": actor})


def _record(deposit: DepositRequest, *, actor, type: str, decision: str, reason: str = "",
            bank_reference: str = "") -> DepositApproval:
    other = deposit.approvals.exclude(type=type).first()
    if other is not None and other.approver_id == actor.pk:
        raise PermissionRefused(_("The bank and platform approvals need two different people; "
                                  "%(actor)s already gave the %(type)s one.") % {
            "actor": actor, "type": other.type})
    try:
        with transaction.atomic():
            approval = DepositApproval.objects.create(
                deposit=deposit, approver=actor, type=type, decision=decision, reason=reason,
                bank_reference=bank_reference)
    except IntegrityError:
        raise ConflictError(_("The %(type)s review of deposit %(id)s was already given.") % {
            "type": type, "id": deposit.pk}) from None
    admin_action_record(actor=actor, action=f"deposit.{type}_{decision}", target_type="deposit",
                        target_id=deposit.pk, params={"bank_reference": bank_reference},
                        reason=reason)
    return approval


def _confirm_if_complete(deposit: DepositRequest, actor) -> str | None:
    approvals = {a.type: a for a in deposit.approvals.all()}
    bank, platform = approvals.get(Type.BANK), approvals.get(Type.PLATFORM)
    if not (bank and platform and bank.decision == platform.decision == Decision.APPROVED):
        return None
    try:
        with transaction.atomic():
            return deposit_payment_confirm(
                deposit_id=deposit.pk, amount_tzs=deposit.amount_tzs,
                psp_reference=bank.bank_reference, source="admin", actor=actor,
                note="bank and platform approvals")
    except IntegrityError:
        raise ConflictError(_("The bank reference %(ref)s already confirmed another deposit at "
                              "%(bank)s.") % {"ref": bank.bank_reference,
                                              "bank": deposit.bank.name}) from None


@transaction.atomic(durable=True)
def deposit_bank_approve(*, deposit_id, actor, bank_reference: str) -> str | None:
    """Fiat received at the bank. Returns the new status once both approvals are in."""
    bank_reference = (bank_reference or "").strip()
    if not bank_reference:
        raise ServiceError(_("Enter the bank's reference of the received transfer."))
    if len(bank_reference) > 100:
        raise ServiceError(_("The bank reference is too long (100 characters at most)."))
    deposit = _bank_transfer_open(deposit_id)
    _require_bank_reviewer(actor, deposit)
    if DepositRequest.objects.filter(bank=deposit.bank, psp_reference=bank_reference,
                                     payment_provider=deposit.payment_provider).exists():
        raise ConflictError(_("The bank reference %(ref)s already confirmed another deposit.")
                            % {"ref": bank_reference})
    _record(deposit, actor=actor, type=Type.BANK, decision=Decision.APPROVED,
            bank_reference=bank_reference)
    return _confirm_if_complete(deposit, actor)


@transaction.atomic(durable=True)
def deposit_platform_approve(*, deposit_id, actor) -> str | None:
    deposit = _bank_transfer_open(deposit_id)
    _require_platform_reviewer(actor)
    _record(deposit, actor=actor, type=Type.PLATFORM, decision=Decision.APPROVED)
    return _confirm_if_complete(deposit, actor)


def _reject(deposit_id, *, actor, reason: str, type: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("A rejection needs a reason."))
    deposit = _bank_transfer_open(deposit_id)
    if type == Type.BANK:
        _require_bank_reviewer(actor, deposit)
    else:
        _require_platform_reviewer(actor)
    _record(deposit, actor=actor, type=type, decision=Decision.REJECTED, reason=reason)
    deposit_reject(deposit_id=deposit.pk, reason=reason, actor=actor)


@transaction.atomic(durable=True)
def deposit_bank_reject(*, deposit_id, actor, reason: str) -> None:
    _reject(deposit_id, actor=actor, reason=reason, type=Type.BANK)


@transaction.atomic(durable=True)
def deposit_platform_reject(*, deposit_id, actor, reason: str) -> None:
    _reject(deposit_id, actor=actor, reason=reason, type=Type.PLATFORM)
