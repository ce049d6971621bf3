"""The four-eyes queue, "Waiting for me": the pending ``DualControlRequest``s the logged-in
person may decide, the decision page of one request (GET shows what will happen, the maker's
evidence and the answer of the action's ``prepare`` step; POSTs approve, reject or withdraw
through core.services), and the maker's own pending requests with a withdraw button.

Who may decide is the services' rule, not this module's: a request is listed, and a button
offered, only when ``core.services``' own role-and-beneficiary check lets the person through
(the same function the approval runs), and never to its maker. A forged POST reaches the
service anyway and is refused in its words."""

from __future__ import annotations

import dataclasses
from functools import partial

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.exceptions import ServiceError
from core.models import DualControlRequest
from core.roles import STAFF_ROLES, user_has_role
from core.services import (
    dual_control_action_get,
    dual_control_actions_for,
    dual_control_actor_check,
    dual_control_approve,
    dual_control_reject,
    dual_control_withdraw,
)
from deposits.models import OrphanPayment, PaymentNotification
from deposits.selectors import deposit_get
from deposits.services.payments import notification_decide
from deposits.zenopay import OrderStatus
from minting.chain import ChainError

PENDING = DualControlRequest.Decision.PENDING
QUEUE_LIMIT = 200  # pending requests read per page; a queue longer than this is an incident

# What the checker's approval does, in plain words, per registered action.
ACTION_EFFECTS = {
    "deposit_confirm_manual": gettext_lazy(
        "Confirms the deposit's mobile-money payment with the transaction id entered by the "
        "maker (ZenoPay is asked once more at approval); the deposit then goes to minting."
    ),
    "deposit_hold_release": gettext_lazy(
        "Releases the deposit's hold with the resolution chosen by the maker."
    ),
    "orphan_attach": gettext_lazy(
        "Attaches the orphan payment to the deposit named in the parameters, which then goes "
        "to minting."
    ),
    "deposit_refund_record": gettext_lazy(
        "Records that the unpaid deposit's money was refunded outside the system."
    ),
    "mint_refund_record": gettext_lazy(
        "Records that the paid, unminted deposit was refunded outside the system (the chain is "
        "checked again at approval)."
    ),
    "safe_nonce_consumed_record": gettext_lazy(
        "Records that the Safe nonce of the deposit's exported proposal was consumed, so the "
        "exported payload can no longer execute."
    ),
    "wallet_verify_manual": gettext_lazy("Marks the wallet as verified by hand."),
    "mint_lane_set": gettext_lazy(
        "Switches MINT_LANE at once to the lane in the parameters (environment: the override "
        "is cleared). With safe_only every new confirmation goes to the Safe lane and the next "
        "run routes the deposits waiting in mint_pending there; with auto new confirmations go "
        "to the worker again (deposits already in the Safe lane stay)."
    ),
    "staff_role_grant": gettext_lazy("Grants the staff role in the parameters to the user."),
    "reconciliation.entry": gettext_lazy(
        "Records the reconciliation entry in the parameters (immutable once recorded); with a "
        "transaction hash the chain is read again at approval and the mint log is claimed."
    ),
    "token_unpause": gettext_lazy(
        "Unpauses the token, through the operator key when it holds the role (the worker sends "
        "it and the state is read back), else as a Safe payload for the signers."
    ),
    "token_unfreeze": gettext_lazy(
        "Unfreezes the address in the parameters (operator key or Safe payload)."
    ),
    "token_unblacklist": gettext_lazy(
        "Removes the address in the parameters from the blacklist (operator key or Safe "
        "payload); its held deposits can then be released."
    ),
    "token_wipe": gettext_lazy(
        "Wipes the whole balance of the blacklisted address in the parameters (operator key or "
        "Safe payload); the burn is then explained by a negative wipe entry."
    ),
    "token_grant_minter": gettext_lazy(
        "Grants MINTER_ROLE on the token to the address in the parameters (operator key holding "
        "DEFAULT_ADMIN_ROLE, or Safe payload): that key may then mint."
    ),
    "reconciliation.attach_log": gettext_lazy(
        "Records the deposit minted by the mint log in the parameters: the chain is read again "
        "at approval (the log mints exactly the deposit's amount to its wallet, unclaimed, deep "
        "enough), then the deposit moves to minted and the log is claimed by it."
    ),
}

# The admin change page of each target type, when Backstage registers one.
TARGET_PAGES = {
    "deposit": "admin:deposits_depositrequest_change",
    "orphan": "admin:deposits_orphanpayment_change",
    "wallet": "admin:accounts_wallet_change",
    "user": "admin:accounts_user_change",
    "address": "admin:token_admin_address",  # token actions on an address (token_pages)
    "token": "admin:token_admin_contract",
}


class ReasonForm(forms.Form):
    # Not required here: an empty rejection reaches the service, which refuses it in its words.
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def four_eyes_page_allowed(user) -> bool:
    """Every member of staff with a role may open the queue; what it lists comes from each
    action's roles."""
    return user.is_authenticated and user_has_role(user, *STAFF_ROLES)


# --- Reads ------------------------------------------------------------------------------------


def dual_control_refusal(*, request: DualControlRequest, user) -> str | None:
    """Why ``user`` may not decide ``request`` in the service's sentence (the action's roles,
    the beneficiary), or None when they may; the maker is told apart by the callers."""
    try:
        definition = dual_control_action_get(request.action)
        dual_control_actor_check(user, definition, "approve", request.target_id, request.params)
    except ServiceError as exc:
        return str(exc)
    return None


def dual_control_waiting_for(*, user) -> list[DualControlRequest]:
    """The pending requests ``user`` may decide, oldest first (the longest waiting on top)."""
    actions = dual_control_actions_for(user)  # in SQL: others' requests never crowd the page
    pending = (
        DualControlRequest.objects.filter(decision=PENDING, action__in=actions)
        .exclude(maker=user)
        .select_related("maker")
        .order_by("made_at")[:QUEUE_LIMIT]
    )
    return [
        request for request in pending if dual_control_refusal(request=request, user=user) is None
    ]


def dual_control_made_by(*, user) -> list[DualControlRequest]:
    """The maker's own requests still waiting for a checker."""
    return list(
        DualControlRequest.objects.filter(decision=PENDING, maker=user)
        .select_related("maker")
        .order_by("made_at")[:QUEUE_LIMIT]
    )


def _may_view(request: DualControlRequest, user) -> bool:
    """The maker, and anyone holding the action's roles (evidence and parameters name a
    customer's phone and payment: not for every member of staff)."""
    if request.maker_id == user.pk:
        return True
    try:
        definition = dual_control_action_get(request.action)
    except ServiceError:
        return False
    return user_has_role(user, *definition.roles)


def _target_link(request: DualControlRequest) -> str | None:
    name = TARGET_PAGES.get(request.target_type)
    if name is None:
        return None
    try:
        return reverse(name, args=[request.target_id])
    except NoReverseMatch:
        return None


def _deposit_facts(deposit_id, *, heading) -> dict | None:
    try:
        deposit = deposit_get(deposit_id=deposit_id)
    except ServiceError:
        return None
    return {
        "heading": heading,
        "rows": [
            (_("Customer"), deposit.user.email),
            (_("Amount (TZS)"), f"{deposit.amount_tzs:,}"),
            (_("Status"), deposit.get_status_display()),
            (_("Payment method"), deposit.get_payment_provider_display()),
            (_("Phone"), deposit.buyer_phone or "—"),
            (_("Hold"), deposit.hold_reason or "—"),
        ],
    }


def _target_facts(request: DualControlRequest) -> list[dict]:
    """The records the action changes, as they stand now: the deposit, or the orphan payment
    and the deposit it would credit."""
    if request.target_type == "deposit":
        facts = _deposit_facts(request.target_id, heading=_("The deposit now"))
        return [facts] if facts else []
    if request.target_type != "orphan":
        return []
    found = []
    orphan = OrphanPayment.objects.filter(pk=request.target_id).first()
    if orphan is not None:
        found.append(
            {
                "heading": _("The orphan payment now"),
                "rows": [
                    (_("PSP reference"), orphan.psp_reference),
                    (_("Amount (TZS)"), f"{orphan.amount_tzs:,}"),
                    (_("Phone"), orphan.phone or "—"),
                    (_("Status"), orphan.get_status_display()),
                ],
            }
        )
    facts = _deposit_facts(
        request.params.get("deposit_id"), heading=_("The deposit it would credit")
    )
    return found + ([facts] if facts else [])


def _order_status_words(status: OrderStatus) -> str:
    """ZenoPay's answer in one plain sentence above its fields."""
    if status.known:
        return _("ZenoPay reports %(status)s: transaction %(ref)s of %(amount)s TZS.") % {
            "status": status.payment_status,
            "ref": status.transid or status.reference or "—",
            "amount": status.amount_tzs if status.amount_tzs is not None else "—",
        }
    if status.no_data:
        return _("ZenoPay holds no payment data for this order (%(why)s).") % {"why": status.reason}
    return _("ZenoPay gave no definite answer (%(why)s).") % {"why": status.reason}


def _fact_value(value) -> str:
    if isinstance(value, frozenset | set | list | tuple):
        return ", ".join(sorted(str(item) for item in value)) or "—"
    if value is None or value == "":
        return "—"
    return str(value)


def _prepare_facts(context: dict) -> list[tuple[str, str]]:
    """The ``prepare`` step's answer as (name, value) rows; a dataclass (ZenoPay's order
    status, a chain proof) is shown field by field, its raw body apart."""
    rows: list[tuple[str, str]] = []
    for key, value in context.items():
        if key == "notification_id":
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                if field.name != "raw_body":
                    rows.append((field.name, _fact_value(getattr(value, field.name))))
        else:
            rows.append((key, _fact_value(value)))
    return rows


def _prepare_preview(request: DualControlRequest) -> dict:
    """The action's ``prepare`` step run now, for the checker to read before approving (for a
    manual confirmation: ZenoPay's fresh answer). The approval runs it again and acts only
    on that later answer. The order-status answer is stored by ``prepare`` like every ZenoPay
    answer; a preview's is decided "ignored" at once, so no answer waits for an outcome."""
    definition = dual_control_action_get(request.action)
    if definition.prepare is None:
        return {"ran": False}
    try:
        context = definition.prepare(request)
    except (ServiceError, ChainError) as exc:
        return {"ran": True, "refusal": str(exc)}
    notification_id = context.get("notification_id")
    if notification_id is not None:
        notification_decide(
            notification_id=notification_id,
            outcome=PaymentNotification.Outcome.IGNORED,
            note=f"shown to a checker of four-eyes request {request.pk}; approval asks again",
        )
    status = context.get("status")
    is_order_status = isinstance(status, OrderStatus)
    return {
        "ran": True,
        "words": _order_status_words(status) if is_order_status else "",
        "facts": _prepare_facts(context),
        "raw_body": status.raw_body if is_order_status else "",
    }


# --- Pages ------------------------------------------------------------------------------------


def _request_or_404(request_id) -> DualControlRequest:
    found = (
        DualControlRequest.objects.select_related("maker", "checker").filter(pk=request_id).first()
    )
    if found is None:
        raise Http404(_("There is no four-eyes request %(id)s.") % {"id": request_id})
    return found


def four_eyes_queue(request, *, site):
    if not four_eyes_page_allowed(request.user):
        raise PermissionDenied
    context = {
        **site.each_context(request),
        "title": _("Waiting for me"),
        "waiting": dual_control_waiting_for(user=request.user),
        "mine": dual_control_made_by(user=request.user),
        "withdraw_form": ReasonForm(prefix="withdraw"),
    }
    return TemplateResponse(request, "backstage/four_eyes.html", context)


def four_eyes_decision(request, *, site, request_id):
    if not four_eyes_page_allowed(request.user):
        raise PermissionDenied
    dual = _request_or_404(request_id)
    if not _may_view(dual, request.user):
        raise PermissionDenied
    pending = dual.decision == PENDING
    is_maker = dual.maker_id == request.user.pk
    refusal = (
        dual_control_refusal(request=dual, user=request.user) if pending and not is_maker else None
    )
    may_decide = pending and not is_maker and refusal is None
    context = {
        **site.each_context(request),
        "title": _("Four-eyes request"),
        "dual": dual,
        "effect": ACTION_EFFECTS.get(dual.action, ""),
        "target_link": _target_link(dual),
        "target_facts": _target_facts(dual),
        "params": sorted(dual.params.items()),
        "pending": pending,
        "is_maker": is_maker,
        "may_decide": may_decide,
        "refusal": refusal,
        "preview": _prepare_preview(dual) if may_decide else None,
        "approve_form": ReasonForm(prefix="approve"),
        "reject_form": ReasonForm(prefix="reject"),
        "withdraw_form": ReasonForm(prefix="withdraw"),
    }
    return TemplateResponse(request, "backstage/four_eyes_decision.html", context)


def _decide(request, request_id, *, prefix: str, act, done: str):
    """POST only; the service decides and refuses. Back to the queue once decided, back to
    the request (or the queue, for one who may not read it) with the service's sentence when
    refused."""
    if not four_eyes_page_allowed(request.user):
        raise PermissionDenied
    dual = _request_or_404(request_id)
    reason = request.POST.get(f"{prefix}-reason", "")
    if len(reason) > 1000:
        messages.error(request, _("Keep the reason to 1,000 characters."))
        return redirect("admin:four_eyes_decision", request_id=dual.pk)
    try:
        act(request_id=dual.pk, reason=reason)
    except ServiceError as exc:
        messages.error(request, str(exc))
        if not _may_view(dual, request.user):  # the refusal is read on the queue instead
            return redirect("admin:four_eyes")
        return redirect("admin:four_eyes_decision", request_id=dual.pk)
    messages.success(request, done % {"action": dual.action, "id": dual.pk})
    return redirect("admin:four_eyes")


@require_POST
def four_eyes_approve(request, *, request_id):
    return _decide(
        request,
        request_id,
        prefix="approve",
        act=partial(dual_control_approve, checker=request.user),
        done=_("Approved: %(action)s (request %(id)s) was applied."),
    )


@require_POST
def four_eyes_reject(request, *, request_id):
    return _decide(
        request,
        request_id,
        prefix="reject",
        act=partial(dual_control_reject, checker=request.user),
        done=_("Rejected: %(action)s (request %(id)s); nothing was changed."),
    )


@require_POST
def four_eyes_withdraw(request, *, request_id):
    return _decide(
        request,
        request_id,
        prefix="withdraw",
        act=partial(dual_control_withdraw, maker=request.user),
        done=_("Withdrawn: %(action)s (request %(id)s); nothing was changed."),
    )


def four_eyes_urls(site) -> list:
    """The queue's URLs, added by ``BackstageSite.get_urls`` (namespace ``admin``)."""
    return [
        path(
            "four-eyes/",
            site.admin_view(partial(four_eyes_queue, site=site)),
            name="four_eyes",
        ),
        path(
            "four-eyes/<uuid:request_id>/",
            site.admin_view(partial(four_eyes_decision, site=site)),
            name="four_eyes_decision",
        ),
        path(
            "four-eyes/<uuid:request_id>/approve/",
            site.admin_view(four_eyes_approve),
            name="four_eyes_approve",
        ),
        path(
            "four-eyes/<uuid:request_id>/reject/",
            site.admin_view(four_eyes_reject),
            name="four_eyes_reject",
        ),
        path(
            "four-eyes/<uuid:request_id>/withdraw/",
            site.admin_view(four_eyes_withdraw),
            name="four_eyes_withdraw",
        ),
    ]
