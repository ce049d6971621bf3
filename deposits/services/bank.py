"""Bank transfers (DESIGN §5.1): a bank approval by a ``bank_admin`` of that bank (fiat
received: the amount and the bank's reference) and a platform approval by
``platform_compliance``, by two different people, in either order. Either may reject with a
reason. The deposit's owner gives neither, whatever their roles (core.roles).

A received amount other than the deposit's holds the deposit (``amount mismatch``) with the
received amount and reference on the hold; the four-eyes hold release in ``operator`` turns
that money into an orphan payment attached to a new deposit for the received amount, or
records its refund — received money never leaves the books by a rejection.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.roles import (
    BANK_ADMIN,
    PLATFORM_COMPLIANCE,
    SUPER_ADMIN,
    require_not_beneficiary,
    require_role,
    user_has_role,
)
from core.services import admin_action_record
from core.text import text_free_storable, text_identifier, text_identifier_fits
from deposits.models import BankStaff, DepositApproval, DepositRequest
from deposits.selectors import deposit_get
from deposits.services.references import (
    orphan_refusal_reason,
    reference_confirmed_deposit,
    reference_orphan,
)
from deposits.services.transitions import (
    AMOUNT_MISMATCH,
    deposit_hold_set,
    deposit_payment_confirm,
    deposit_reject,
)

S = DepositRequest.Status
Type = DepositApproval.Type
Decision = DepositApproval.Decision
BANK = DepositRequest.Provider.BANK_TRANSFER
REFERENCE_MAX = DepositApproval._meta.get_field("bank_reference").max_length
MAX_SANE_AMOUNT_TZS = 10**15  # beyond any deposit; keeps a typo from overflowing a bigint


def _bank_transfer_open(deposit_id) -> DepositRequest:
    deposit = deposit_get(deposit_id=deposit_id, for_update=True)
    if deposit.payment_provider != DepositRequest.Provider.BANK_TRANSFER:
        raise ServiceError(_("Deposit %(id)s is not a bank transfer.") % {"id": deposit.pk})
    if deposit.status != S.SUBMITTED:
        raise ConflictError(
            _("Deposit %(id)s is %(status)s; only a submitted deposit can be reviewed.")
            % {"id": deposit.pk, "status": deposit.status}
        )
    if deposit.hold_reason:
        raise ConflictError(
            _("Deposit %(id)s is on hold (%(reason)s).")
            % {"id": deposit.pk, "reason": deposit.hold_reason}
        )
    return deposit


def _require_not_owner(actor, deposit: DepositRequest, doing: str) -> None:
    require_not_beneficiary(
        actor,
        deposit.user_id,
        doing=_("%(doing)s deposit %(id)s") % {"doing": doing, "id": deposit.pk},
    )


def _require_bank_reviewer(actor, deposit: DepositRequest) -> None:
    _require_not_owner(actor, deposit, _("review the bank transfer of"))
    if user_has_role(actor, SUPER_ADMIN):
        return
    if not user_has_role(actor, BANK_ADMIN):
        raise PermissionRefused(_("%(actor)s is not a bank admin.") % {"actor": actor})
    staff = BankStaff.objects.filter(user=actor).select_related("bank").first()
    if staff is None or staff.bank_id != deposit.bank_id:
        raise PermissionRefused(
            _("%(actor)s acts for another bank, not %(bank)s.")
            % {"actor": actor, "bank": deposit.bank.name}
        )


def _require_platform_reviewer(actor, deposit: DepositRequest) -> None:
    _require_not_owner(actor, deposit, _("review the bank transfer of"))
    require_role(
        actor, PLATFORM_COMPLIANCE, SUPER_ADMIN, doing=_("review bank transfers as compliance")
    )


def _record(
    deposit: DepositRequest,
    *,
    actor,
    type: str,
    decision: str,
    reason: str = "",
    bank_reference: str = "",
    amount_received_tzs: int | None = None,
) -> DepositApproval:
    other = deposit.approvals.exclude(type=type).first()
    if other is not None and other.approver_id == actor.pk:
        raise PermissionRefused(
            _(
                "The bank and platform approvals need two different people; "
                "%(actor)s already gave the %(type)s one."
            )
            % {"actor": actor, "type": other.type}
        )
    try:
        with transaction.atomic():
            approval = DepositApproval.objects.create(
                deposit=deposit,
                approver=actor,
                type=type,
                decision=decision,
                reason=reason,
                bank_reference=bank_reference,
                amount_received_tzs=amount_received_tzs,
            )
    except IntegrityError:
        raise ConflictError(
            _("The %(type)s review of deposit %(id)s was already given.")
            % {"type": type, "id": deposit.pk}
        ) from None
    admin_action_record(
        actor=actor,
        action=f"deposit.{type}_{decision}",
        target_type="deposit",
        target_id=deposit.pk,
        params={"bank_reference": bank_reference, "amount_received_tzs": amount_received_tzs},
        reason=reason,
    )
    return approval


def _confirm_if_complete(deposit: DepositRequest, actor) -> str | None:
    approvals = {a.type: a for a in deposit.approvals.all()}
    bank, platform = approvals.get(Type.BANK), approvals.get(Type.PLATFORM)
    if not (bank and platform and bank.decision == platform.decision == Decision.APPROVED):
        return None
    try:
        with transaction.atomic():
            return deposit_payment_confirm(
                deposit_id=deposit.pk,
                amount_tzs=deposit.amount_tzs,
                psp_reference=bank.bank_reference,
                source="admin",
                actor=actor,
                note="bank and platform approvals",
            )
    except IntegrityError:
        raise ConflictError(
            _("The bank reference %(ref)s already confirmed another deposit at %(bank)s.")
            % {"ref": bank.bank_reference, "bank": deposit.bank.name}
        ) from None


def _clean_amount_received(value: object) -> int:
    if isinstance(value, str) and value.strip().replace(",", "").isdigit():
        value = int(value.strip().replace(",", ""))
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value <= 0
        or value > MAX_SANE_AMOUNT_TZS
    ):
        raise ServiceError(
            _("Enter the amount the bank received, in whole shillings (e.g. 150000).")
        )
    return value


def _require_reference_unused(deposit: DepositRequest, bank_reference: str) -> None:
    if (
        reference_confirmed_deposit(
            provider=BANK, reference=bank_reference, bank_id=deposit.bank_id
        )
        is not None
    ):
        raise ConflictError(
            _("The bank reference %(ref)s already confirmed another deposit.")
            % {"ref": bank_reference}
        )
    orphan = reference_orphan(provider=BANK, reference=bank_reference)
    if orphan is not None:
        raise ConflictError(
            _("The bank reference %(ref)s cannot be credited to this deposit: %(why)s.")
            % {"ref": bank_reference, "why": orphan_refusal_reason(orphan)}
        )


@transaction.atomic(durable=True)
def deposit_bank_approve(
    *, deposit_id, actor, bank_reference: str, amount_received_tzs
) -> str | None:
    """Fiat received at the bank: how much, and the bank's reference. Returns the new status
    once both approvals are in. A different amount holds the deposit (``amount mismatch``)
    and the hold release decides what happens to the money."""
    bank_reference = text_identifier(bank_reference)
    if not bank_reference:
        raise ServiceError(_("Enter the bank's reference of the received transfer."))
    # Never clipped: a clipped reference could merge two transfers (DESIGN §14, 13).
    if not text_identifier_fits(bank_reference, max_length=REFERENCE_MAX):
        raise ServiceError(
            _(
                "The bank reference must be at most %(n)d characters, without "
                "control characters; enter it as the bank shows it."
            )
            % {"n": REFERENCE_MAX}
        )
    received = _clean_amount_received(amount_received_tzs)
    deposit = _bank_transfer_open(deposit_id)
    _require_bank_reviewer(actor, deposit)
    _require_reference_unused(deposit, bank_reference)
    if received != deposit.amount_tzs:
        reason = (
            f"{AMOUNT_MISMATCH}: received {received} TZS for a deposit of {deposit.amount_tzs} TZS"
        )
        _record(
            deposit,
            actor=actor,
            type=Type.BANK,
            decision=Decision.APPROVED,
            reason=reason,
            bank_reference=bank_reference,
            amount_received_tzs=received,
        )
        # The same details the ZenoPay path keeps, so the one hold release handles both.
        deposit_hold_set(
            deposit_id=deposit.pk,
            reason=reason,
            source="admin",
            actor=actor,
            details={
                "paid_amount_tzs": received,
                "psp_reference": bank_reference,
                "bank_id": str(deposit.bank_id),
                "msisdn": None,
                "channel": None,
            },
        )
        return None
    _record(
        deposit,
        actor=actor,
        type=Type.BANK,
        decision=Decision.APPROVED,
        bank_reference=bank_reference,
        amount_received_tzs=received,
    )
    return _confirm_if_complete(deposit, actor)


@transaction.atomic(durable=True)
def deposit_platform_approve(*, deposit_id, actor) -> str | None:
    deposit = _bank_transfer_open(deposit_id)
    _require_platform_reviewer(actor, deposit)
    _record(deposit, actor=actor, type=Type.PLATFORM, decision=Decision.APPROVED)
    return _confirm_if_complete(deposit, actor)


def _reject(deposit_id, *, actor, reason: str, type: str) -> None:
    reason = text_free_storable(reason, max_length=1000)
    if not reason:
        raise ServiceError(_("A rejection needs a reason."))
    deposit = _bank_transfer_open(deposit_id)
    if type == Type.BANK:
        _require_bank_reviewer(actor, deposit)
    else:
        _require_platform_reviewer(actor, deposit)
    _record(deposit, actor=actor, type=type, decision=Decision.REJECTED, reason=reason)
    deposit_reject(deposit_id=deposit.pk, reason=reason, actor=actor)


@transaction.atomic(durable=True)
def deposit_bank_reject(*, deposit_id, actor, reason: str) -> None:
    _reject(deposit_id, actor=actor, reason=reason, type=Type.BANK)


@transaction.atomic(durable=True)
def deposit_platform_reject(*, deposit_id, actor, reason: str) -> None:
    _reject(deposit_id, actor=actor, reason=reason, type=Type.PLATFORM)
