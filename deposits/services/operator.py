"""Operator actions on deposits (DESIGN §5, §9): cancel, orphan dismissal, and the four-eyes
actions — manual payment confirmation, hold release, orphan attach, refund record — which
are registered with core's maker-checker and applied by the checker's approval."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core.clock import now
from core.exceptions import ConflictError, ServiceError
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, require_not_beneficiary, require_role
from core.services import (
    DualControlAction,
    admin_action_record,
    dual_control_action_register,
    dual_control_request_make,
)
from core.text import text_free_storable, text_identifier_fits
from deposits.models import DepositRequest, DepositTransition, LimitEvent, OrphanPayment
from deposits.phones import phone_last9
from deposits.selectors import deposit_get, deposit_owner_id
from deposits.services.payments import notification_decide, order_status_notification_store
from deposits.services.references import (
    orphan_refusal_reason,
    reference_confirmed_deposit,
    reference_orphan,
)
from deposits.services.transitions import (
    AMOUNT_MISMATCH,
    deposit_cancel,
    deposit_hold_clear,
    deposit_payment_confirm,
    deposit_recover,
    deposit_refund,
    deposit_release_rejected,
)
from deposits.zenopay import zenopay_order_status

S = DepositRequest.Status
ZENOPAY = DepositRequest.Provider.ZENOPAY
OPERATOR_ROLES = (PLATFORM_COMPLIANCE, SUPER_ADMIN)
UNPAID_REFUNDABLE = (S.SUBMITTED, S.CANCELLED, S.REJECTED)
REASON_MAX = 1000
EVIDENCE_MAX = 4000
PHONE_MAX = 32  # as typed from the dashboard, spaces and all; compared on its last 9 digits


def _clean_reason(reason: str, what: str) -> str:
    reason = text_free_storable(reason, max_length=REASON_MAX)
    if not reason:
        raise ServiceError(_("%(what)s needs a reason.") % {"what": what})
    return reason


def _clean_evidence(evidence: str) -> str:
    """Evidence comes from a form or a command line: made storable (no NUL or control
    characters) and clipped, as free text may be."""
    return text_free_storable(evidence, max_length=EVIDENCE_MAX)


@transaction.atomic(durable=True)
def deposit_cancel_by_operator(*, deposit_id, actor, reason: str) -> None:
    require_role(actor, *OPERATOR_ROLES, doing=_("cancel deposits"))
    reason = _clean_reason(reason, _("A cancellation"))
    deposit = deposit_get(deposit_id=deposit_id, for_update=True)
    require_not_beneficiary(actor, deposit.user_id, doing=_("cancel deposit %s") % deposit.pk)
    deposit_cancel(
        deposit_id=deposit.pk,
        reason=reason,
        source="admin",
        actor=actor,
        next_poll_at=now() if deposit.payment_provider == ZENOPAY else None,
    )
    admin_action_record(
        actor=actor,
        action="deposit.cancel",
        target_type="deposit",
        target_id=deposit.pk,
        reason=reason,
    )


@transaction.atomic(durable=True)
def orphan_dismiss(*, orphan_id, actor, note: str) -> None:
    require_role(actor, *OPERATOR_ROLES, doing=_("dismiss orphan payments"))
    note = _clean_reason(note, _("Dismissing an orphan payment"))
    updated = OrphanPayment.objects.filter(
        pk=orphan_id, status=OrphanPayment.Status.UNMATCHED
    ).update(status=OrphanPayment.Status.DISMISSED, note=note, resolved_at=now(), resolved_by=actor)
    if updated != 1:
        raise ConflictError(
            _("Orphan payment %(id)s is not waiting for a decision.") % {"id": orphan_id}
        )
    admin_action_record(
        actor=actor, action="orphan.dismiss", target_type="orphan", target_id=orphan_id, reason=note
    )


# --- Manual confirmation (runbook: "order-status is empty or unreliable") ----------------------


def _manual_confirm_validate(params: dict, target_id: str) -> None:
    deposit = deposit_get(deposit_id=target_id)
    if deposit.payment_provider != ZENOPAY:
        raise ServiceError(_("Manual confirmation is for mobile-money deposits."))
    held_rejected = deposit.status == S.REJECTED and deposit.hold_reason
    if not (deposit.status in (S.SUBMITTED, S.CANCELLED) or held_rejected):
        raise ConflictError(
            _(
                "Deposit %(id)s is %(status)s; only a submitted, cancelled or held "
                "deposit can be confirmed by hand."
            )
            % {"id": deposit.pk, "status": deposit.status}
        )
    transid = str(params.get("transid", "")).strip()
    if not transid or len(transid) > 100 or not re.fullmatch(r"[A-Za-z0-9._\-]+", transid):
        raise ServiceError(_("Enter the ZenoPay transaction id shown on the dashboard."))
    if params.get("amount_tzs") != deposit.amount_tzs:
        raise ServiceError(
            _(
                "The amount on the dashboard (%(seen)s) is not the deposit's "
                "amount (%(amount)s TZS); a manual confirmation never mints "
                "another amount."
            )
            % {"seen": params.get("amount_tzs"), "amount": deposit.amount_tzs}
        )
    phone = str(params.get("phone", ""))
    if phone and not text_identifier_fits(phone, max_length=PHONE_MAX):
        raise ServiceError(
            _(
                "Enter the phone number as the dashboard shows it (%(n)d characters "
                "at most, no control characters)."
            )
            % {"n": PHONE_MAX}
        )
    if phone and phone_last9(phone) != phone_last9(deposit.buyer_phone):
        raise ServiceError(_("The phone on the dashboard is not the deposit's phone."))
    _require_reference_unused(deposit, transid)


def _require_reference_unused(deposit: DepositRequest, transid: str) -> None:
    """A payment credits one deposit: not one another deposit holds, nor an orphan payment
    (refunded, dismissed, attached or waiting to be attached) — as on the automatic path."""
    if (
        reference_confirmed_deposit(
            provider=ZENOPAY, reference=transid, exclude_deposit_id=deposit.pk
        )
        is not None
    ):
        raise ConflictError(
            _("Transaction %(ref)s already confirmed another deposit.") % {"ref": transid}
        )
    orphan = reference_orphan(provider=ZENOPAY, reference=transid)
    if orphan is not None:
        raise ConflictError(
            _("Transaction %(ref)s cannot be credited to this deposit: %(why)s.")
            % {"ref": transid, "why": orphan_refusal_reason(orphan)}
        )


def _manual_confirm_prepare(request) -> dict:
    """One more order-status query at approval (DESIGN §5.1), outside any transaction."""
    status = zenopay_order_status(order_id=request.target_id)
    notification = order_status_notification_store(deposit_id=request.target_id, status=status)
    return {"status": status, "notification_id": notification.pk}


def _not_an_answer(status) -> bool:
    """DESIGN §5.1: only a definite answer, or one that plainly says there is no payment data
    ("not found", empty data), lets the maker's evidence stand. Anything else — no response,
    401, 403, 408, 429, a redirect, a 5xx, a page that is not JSON, data for another order, an
    unexpected shape — is not an answer: refuse and try again later."""
    return not status.known and not status.no_data


def _manual_confirm_apply(request, checker, context: dict) -> None:
    status = context["status"]
    transid = request.params["transid"]
    if _not_an_answer(status):
        raise ConflictError(
            _(
                "ZenoPay could not be asked about this payment just now (%(why)s); "
                "approve again in a moment."
            )
            % {"why": status.reason}
        )
    seen = deposit_get(deposit_id=request.target_id).hold_details
    if seen.get("paid_amount_tzs") not in (None, request.params["amount_tzs"]) or seen.get(
        "psp_reference"
    ) not in (None, "", transid):
        raise ConflictError(
            _(
                "Our own earlier order-status answer showed transaction "
                "%(ref)s of %(amount)s TZS, not the one entered; refused."
            )
            % {"ref": seen.get("psp_reference"), "amount": seen.get("paid_amount_tzs")}
        )
    if status.known and status.payment_status == "COMPLETED":
        seen_ref = status.transid or status.reference
        if seen_ref != transid or status.amount_tzs != request.params["amount_tzs"]:
            raise ConflictError(
                _(
                    "ZenoPay now reports a completed payment with transaction "
                    "%(ref)s of %(amount)s TZS, not the one entered; refused."
                )
                % {"ref": seen_ref, "amount": status.amount_tzs}
            )
    if status.known and status.payment_status in ("FAILED", "CANCELLED"):
        raise ConflictError(
            _("ZenoPay now reports this payment as %(status)s; refused.")
            % {"status": status.payment_status}
        )
    deposit = deposit_get(deposit_id=request.target_id, for_update=True)
    if deposit.hold_reason:
        deposit_hold_clear(
            deposit_id=deposit.pk,
            source="admin",
            actor=checker,
            note="manual confirmation clears the hold",
        )
    confirm = {S.SUBMITTED: deposit_payment_confirm, S.CANCELLED: deposit_recover}.get(
        deposit.status
    )
    try:
        with transaction.atomic():
            if confirm is not None:
                confirm(
                    deposit_id=deposit.pk,
                    amount_tzs=deposit.amount_tzs,
                    psp_reference=transid,
                    source="admin",
                    actor=checker,
                )
            elif deposit.status == S.REJECTED:
                deposit_release_rejected(
                    deposit_id=deposit.pk,
                    amount_tzs=deposit.amount_tzs,
                    psp_reference=transid,
                    actor=checker,
                )
    except IntegrityError:
        raise ConflictError(
            _("Transaction %(ref)s already confirmed another deposit.") % {"ref": transid}
        ) from None
    notification_decide(
        notification_id=context["notification_id"],
        outcome="applied",
        note=f"manual confirmation {request.pk}",
    )


def deposit_confirm_manual_request(
    *, deposit_id, transid: str, amount_tzs, phone: str, evidence: str, maker
):
    """The maker's half: what the ZenoPay dashboard shows, and the evidence."""
    if isinstance(amount_tzs, str) and amount_tzs.strip().isdigit():
        amount_tzs = int(amount_tzs.strip())
    evidence = _clean_evidence(evidence)
    if not evidence:
        raise ServiceError(_("Describe the evidence (e.g. the dashboard entry) for the checker."))
    deposit = deposit_get(deposit_id=deposit_id)
    return dual_control_request_make(
        action="deposit_confirm_manual",
        target_id=deposit.pk,
        params={
            "transid": (transid or "").strip(),
            "amount_tzs": amount_tzs,
            "phone": (phone or "").strip(),
        },
        evidence=evidence,
        maker=maker,
    )


# --- Hold release ----------------------------------------------------------------------------

RESOLUTIONS = ("clear", "cancel_and_orphan", "refund")


# Checks a higher app adds to a hold release (minting: a "blacklisted recipient" hold is
# released only once the token no longer blacklists the wallet). Each takes (deposit,
# resolution) and raises ServiceError; they may read the chain, so they run outside any
# transaction: when the maker asks and before the checker's approval transaction.
_HOLD_RELEASE_CHECKS: list = []


def hold_release_check_register(check) -> None:
    if check not in _HOLD_RELEASE_CHECKS:
        _HOLD_RELEASE_CHECKS.append(check)


def _hold_release_checks_run(deposit_id, resolution) -> None:
    deposit = deposit_get(deposit_id=deposit_id)
    for check in _HOLD_RELEASE_CHECKS:
        check(deposit, resolution)


def _hold_release_prepare(request) -> dict:
    _hold_release_checks_run(request.target_id, request.params.get("resolution"))
    return {}


def _hold_release_validate(params: dict, target_id: str) -> None:
    deposit = deposit_get(deposit_id=target_id)
    if not deposit.hold_reason:
        raise ConflictError(_("Deposit %(id)s is not on hold.") % {"id": deposit.pk})
    resolution = params.get("resolution")
    if resolution not in RESOLUTIONS:
        raise ServiceError(_("Choose how to release the hold: clear, cancel_and_orphan or refund."))
    mismatch = deposit.hold_reason.startswith(AMOUNT_MISMATCH)
    if mismatch and resolution == "clear":
        raise ServiceError(
            _(
                "An amount mismatch is never released as is: cancel it into an "
                "orphan payment for the paid amount, or record a refund."
            )
        )
    if not mismatch and resolution == "cancel_and_orphan":
        raise ServiceError(_("Only an amount mismatch is turned into an orphan payment."))
    if resolution == "refund" and deposit.status not in UNPAID_REFUNDABLE:
        raise ConflictError(
            _("A %(status)s deposit is refunded through minting's refund record.")
            % {"status": deposit.status}
        )


def _new_deposit_for_paid_amount(deposit: DepositRequest, amount_tzs: int) -> DepositRequest:
    created = DepositRequest.objects.create(
        user=deposit.user,
        bank=deposit.bank,
        wallet=deposit.wallet,
        chain=deposit.chain,
        amount_tzs=amount_tzs,
        payment_provider=deposit.payment_provider,
        buyer_phone=deposit.buyer_phone,
        initiation=None,
    )
    DepositTransition.objects.create(
        deposit=created,
        from_status="",
        to_status=S.SUBMITTED,
        source="admin",
        note=f"created for the payment of mismatched deposit {deposit.pk}",
    )
    LimitEvent.objects.create(
        user=deposit.user,
        kind=LimitEvent.Kind.RECOVERY,
        subject=str(deposit.user_id),
        requested_tzs=amount_tzs,
        limit_tzs=0,
        used_tzs=0,
        deposit=created,
    )
    return created


def _orphan_attach_apply_to(orphan: OrphanPayment, deposit: DepositRequest, checker) -> str:
    target = deposit_payment_confirm(
        deposit_id=deposit.pk,
        amount_tzs=deposit.amount_tzs,
        psp_reference=orphan.psp_reference,
        psp_channel=orphan.channel,
        source="admin",
        actor=checker,
        note=f"orphan payment {orphan.pk} attached",
    )
    updated = OrphanPayment.objects.filter(
        pk=orphan.pk, status=OrphanPayment.Status.UNMATCHED
    ).update(
        status=OrphanPayment.Status.MATCHED,
        matched_deposit=deposit,
        resolved_at=now(),
        resolved_by=checker,
    )
    if updated != 1:
        raise ConflictError(_("Orphan payment %(id)s was already resolved.") % {"id": orphan.pk})
    return target


def _refunded_payment_remember(
    deposit: DepositRequest, details: dict, *, checker, evidence: str, reason: str
) -> None:
    """Remember a refunded payment as a dismissed OrphanPayment, so no later check, manual
    confirmation or attach ever treats it as new money (issue: a refunded payment is never
    credited to another deposit). Known from the hold's details, or the deposit's own
    confirmed reference."""
    reference = details.get("psp_reference") or deposit.psp_reference
    if not reference:
        return
    OrphanPayment.objects.get_or_create(
        provider=deposit.payment_provider,
        psp_reference=reference,
        defaults={
            # The paid amount when it was readable; else the deposit's, as the best record.
            "amount_tzs": details.get("paid_amount_tzs") or deposit.amount_tzs,
            "phone": details.get("msisdn") or "",
            "channel": details.get("channel") or "",
            "source_deposit": deposit,
            "reason": reason,
            "status": OrphanPayment.Status.DISMISSED,
            "resolved_at": now(),
            "resolved_by": checker,
            "note": evidence[:1000],
        },
    )


def _hold_release_apply(request, checker, context: dict) -> None:
    deposit = deposit_get(deposit_id=request.target_id, for_update=True)
    resolution = request.params["resolution"]
    details = dict(deposit.hold_details)
    deposit_hold_clear(
        deposit_id=deposit.pk,
        source="admin",
        actor=checker,
        note=f"hold released ({resolution}) by four eyes",
    )
    if resolution == "refund":
        deposit_refund(
            deposit_id=deposit.pk,
            allowed=UNPAID_REFUNDABLE,
            actor=checker,
            note="refund recorded at hold release",
        )
        _refunded_payment_remember(
            deposit,
            details,
            checker=checker,
            evidence=request.evidence,
            reason="refunded at hold release",
        )
    elif resolution == "cancel_and_orphan":
        if deposit.status == S.SUBMITTED:
            deposit_cancel(
                deposit_id=deposit.pk,
                source="admin",
                actor=checker,
                reason="amount mismatch: the payment moved to a new deposit",
            )
        try:
            with transaction.atomic():
                orphan = OrphanPayment.objects.create(
                    provider=deposit.payment_provider,
                    psp_reference=details["psp_reference"],
                    amount_tzs=details["paid_amount_tzs"],
                    phone=details.get("msisdn") or "",
                    channel=details.get("channel") or "",
                    source_deposit=deposit,
                    reason="amount mismatch",
                )
        except IntegrityError:
            raise ConflictError(
                _(
                    "The payment %(ref)s is already recorded as an orphan payment; resolve that "
                    "one (attach or dismiss) instead of releasing this hold into a new deposit."
                )
                % {"ref": details["psp_reference"]}
            ) from None
        replacement = _new_deposit_for_paid_amount(deposit, orphan.amount_tzs)
        _orphan_attach_apply_to(orphan, replacement, checker)


def deposit_hold_release_request(*, deposit_id, resolution: str, evidence: str, maker):
    deposit = deposit_get(deposit_id=deposit_id)
    _hold_release_checks_run(deposit.pk, resolution)
    return dual_control_request_make(
        action="deposit_hold_release",
        target_id=deposit.pk,
        params={"resolution": resolution},
        evidence=_clean_evidence(evidence),
        maker=maker,
    )


# --- Orphan attach ---------------------------------------------------------------------------


def _orphan_attach_validate(params: dict, target_id: str) -> None:
    orphan = OrphanPayment.objects.filter(pk=target_id).first()
    if orphan is None or orphan.status != OrphanPayment.Status.UNMATCHED:
        raise ConflictError(
            _("Orphan payment %(id)s is not waiting to be attached.") % {"id": target_id}
        )
    deposit = deposit_get(deposit_id=params.get("deposit_id"))
    if deposit.status != S.SUBMITTED or deposit.hold_reason:
        raise ConflictError(
            _(
                "Attach an orphan payment only to a submitted deposit that is not "
                "on hold; %(id)s is %(status)s."
            )
            % {"id": deposit.pk, "status": deposit.status}
        )
    if deposit.payment_provider != orphan.provider:
        raise ServiceError(
            _(
                "The orphan payment came through %(provider)s; attach it only to a "
                "deposit of the same payment method."
            )
            % {"provider": orphan.provider}
        )
    if deposit.amount_tzs != orphan.amount_tzs:
        raise ServiceError(
            _(
                "The orphan payment is %(paid)s TZS but the deposit is %(amount)s "
                "TZS: the amounts must match."
            )
            % {"paid": orphan.amount_tzs, "amount": deposit.amount_tzs}
        )
    if orphan.phone and phone_last9(orphan.phone) != phone_last9(deposit.buyer_phone):
        raise ServiceError(_("The orphan payment came from another phone than the deposit's."))


def _orphan_attach_apply(request, checker, context: dict) -> None:
    orphan = OrphanPayment.objects.select_for_update().get(pk=request.target_id)
    deposit = deposit_get(deposit_id=request.params["deposit_id"], for_update=True)
    _orphan_attach_validate(request.params, request.target_id)
    try:
        with transaction.atomic():
            _orphan_attach_apply_to(orphan, deposit, checker)
    except IntegrityError:
        raise ConflictError(
            _("Reference %(ref)s already confirmed another deposit.")
            % {"ref": orphan.psp_reference}
        ) from None


def orphan_attach_request(*, orphan_id, deposit_id, evidence: str, maker):
    deposit = deposit_get(deposit_id=deposit_id)
    return dual_control_request_make(
        action="orphan_attach",
        target_id=orphan_id,
        params={"deposit_id": str(deposit.pk)},
        evidence=_clean_evidence(evidence),
        maker=maker,
    )


# --- Refund record (unpaid states; the mint states go through minting) -------------------------


def _refund_validate(params: dict, target_id: str) -> None:
    deposit = deposit_get(deposit_id=target_id)
    if deposit.status not in UNPAID_REFUNDABLE:
        raise ConflictError(
            _(
                "Deposit %(id)s is %(status)s; a refund is recorded here only for "
                "submitted, cancelled or rejected deposits."
            )
            % {"id": deposit.pk, "status": deposit.status}
        )


def _refund_apply(request, checker, context: dict) -> None:
    _refund_validate(request.params, request.target_id)
    deposit = deposit_get(deposit_id=request.target_id, for_update=True)
    _refunded_payment_remember(
        deposit,
        dict(deposit.hold_details),
        checker=checker,
        evidence=request.evidence,
        reason="refunded off-system",
    )
    deposit_refund(
        deposit_id=request.target_id,
        allowed=UNPAID_REFUNDABLE,
        actor=checker,
        note=f"off-system refund recorded: {request.evidence}"[:1000],
    )


def deposit_refund_record_request(*, deposit_id, evidence: str, maker):
    evidence = _clean_evidence(evidence)
    if not evidence:
        raise ServiceError(_("Describe the refund (how, when, reference) for the checker."))
    deposit = deposit_get(deposit_id=deposit_id)
    return dual_control_request_make(
        action="deposit_refund_record",
        target_id=deposit.pk,
        params={},
        evidence=evidence,
        maker=maker,
    )


def register_dual_control_actions() -> None:
    # The beneficiary (the deposit's owner; for an orphan attach, the owner of the deposit
    # it credits) is neither maker nor checker, whatever their roles (core.roles).
    for action in (
        DualControlAction(
            name="deposit_confirm_manual",
            target_type="deposit",
            roles=OPERATOR_ROLES,
            apply=_manual_confirm_apply,
            validate=_manual_confirm_validate,
            prepare=_manual_confirm_prepare,
            beneficiary=deposit_owner_id,
        ),
        DualControlAction(
            name="deposit_hold_release",
            target_type="deposit",
            roles=OPERATOR_ROLES,
            apply=_hold_release_apply,
            validate=_hold_release_validate,
            prepare=_hold_release_prepare,
            beneficiary=deposit_owner_id,
        ),
        DualControlAction(
            name="orphan_attach",
            target_type="orphan",
            roles=OPERATOR_ROLES,
            apply=_orphan_attach_apply,
            validate=_orphan_attach_validate,
            params_beneficiary=lambda params: deposit_owner_id(params.get("deposit_id")),
        ),
        DualControlAction(
            name="deposit_refund_record",
            target_type="deposit",
            roles=OPERATOR_ROLES,
            apply=_refund_apply,
            validate=_refund_validate,
            beneficiary=deposit_owner_id,
        ),
    ):
        dual_control_action_register(action)
