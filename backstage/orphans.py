"""Orphan payments in Backstage: the queue of payments that credited no deposit, and per
payment the maker's attach request (to a submitted deposit of the same amount and phone; a
different person approves it in the four-eyes queue) and the dismissal with a note. The
services (deposits.services.operator) decide; a refusal is shown in their words."""

from __future__ import annotations

from functools import partial

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.exceptions import ServiceError
from core.models import DualControlRequest
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, user_has_role
from deposits.models import DepositRequest, OrphanPayment
from deposits.phones import phone_last9
from deposits.services.operator import orphan_attach_request, orphan_dismiss

UNMATCHED = OrphanPayment.Status.UNMATCHED
QUEUE_LIMIT = 200  # unmatched payments listed; more than this is an incident of its own
CANDIDATES_SHOWN = 10


class AttachForm(forms.Form):
    deposit_id = forms.CharField(label=gettext_lazy("Deposit ID"), max_length=64)
    evidence = forms.CharField(
        label=gettext_lazy("Evidence for the checker"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DismissForm(forms.Form):
    # Not required here: an empty note reaches the service, which refuses it in its words.
    note = forms.CharField(
        label=gettext_lazy("Note"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def orphans_page_allowed(user) -> bool:
    """Compliance and super admins (DESIGN §9: orphan attach and dismiss)."""
    return user.is_authenticated and user_has_role(user, PLATFORM_COMPLIANCE, SUPER_ADMIN)


# --- Reads ------------------------------------------------------------------------------------


def orphans_unmatched() -> list[OrphanPayment]:
    """The payments waiting for a decision, oldest first."""
    return list(
        OrphanPayment.objects.filter(status=UNMATCHED)
        .select_related("source_deposit")
        .order_by("created_at")[:QUEUE_LIMIT]
    )


def orphan_attach_pending(*, orphan: OrphanPayment) -> DualControlRequest | None:
    return DualControlRequest.objects.filter(
        action="orphan_attach",
        target_type="orphan",
        target_id=str(orphan.pk),
        decision=DualControlRequest.Decision.PENDING,
    ).first()


def orphan_candidate_deposits(*, orphan: OrphanPayment) -> list[DepositRequest]:
    """Submitted deposits not on hold, of the payment's method and amount, paid from its
    phone when it has one: where the money most likely belongs. A hint for the maker; the
    attach service checks again and the checker decides."""
    deposits = (
        DepositRequest.objects.filter(
            status=DepositRequest.Status.SUBMITTED,
            hold_reason="",
            payment_provider=orphan.provider,
            amount_tzs=orphan.amount_tzs,
        )
        .select_related("user")
        .order_by("-created_at")[:200]
    )
    last9 = phone_last9(orphan.phone) if orphan.phone else None
    return [
        deposit
        for deposit in deposits
        if last9 is None or phone_last9(deposit.buyer_phone) == last9
    ][:CANDIDATES_SHOWN]


# --- Pages ------------------------------------------------------------------------------------


def _orphan_or_404(orphan_id) -> OrphanPayment:
    orphan = (
        OrphanPayment.objects.select_related("source_deposit", "matched_deposit", "resolved_by")
        .filter(pk=orphan_id)
        .first()
    )
    if orphan is None:
        raise Http404(_("There is no orphan payment %(id)s.") % {"id": orphan_id})
    return orphan


def orphans_queue(request, *, site):
    if not orphans_page_allowed(request.user):
        raise PermissionDenied
    context = {
        **site.each_context(request),
        "title": _("Orphan payments"),
        "orphans": orphans_unmatched(),
    }
    return TemplateResponse(request, "backstage/orphan_queue.html", context)


def orphan_page(request, *, site, orphan_id):
    if not orphans_page_allowed(request.user):
        raise PermissionDenied
    orphan = _orphan_or_404(orphan_id)
    waiting = orphan.status == UNMATCHED
    context = {
        **site.each_context(request),
        "title": _("Orphan payment"),
        "orphan": orphan,
        "waiting": waiting,
        "pending_attach": orphan_attach_pending(orphan=orphan) if waiting else None,
        "candidates": orphan_candidate_deposits(orphan=orphan) if waiting else [],
        "attach_form": AttachForm(prefix="attach"),
        "dismiss_form": DismissForm(prefix="dismiss"),
    }
    return TemplateResponse(request, "backstage/orphan_payment.html", context)


def _act(request, action) -> None:
    try:
        messages.success(request, action())
    except ServiceError as exc:
        messages.error(request, str(exc))


@require_POST
def orphan_attach(request, *, orphan_id):
    """The maker's half: a four-eyes request a different person approves."""
    if not orphans_page_allowed(request.user):
        raise PermissionDenied
    orphan = _orphan_or_404(orphan_id)
    form = AttachForm(request.POST, prefix="attach")
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("admin:orphan_payment", orphan_id=orphan.pk)

    def attach() -> str:
        made = orphan_attach_request(
            orphan_id=orphan.pk,
            deposit_id=form.cleaned_data["deposit_id"].strip(),
            evidence=form.cleaned_data["evidence"],
            maker=request.user,
        )
        return _(
            "Attach requested (four-eyes request %(id)s): a colleague approves or rejects it "
            "in Waiting for me."
        ) % {"id": made.pk}

    _act(request, attach)
    return redirect("admin:orphan_payment", orphan_id=orphan.pk)


@require_POST
def orphan_dismiss_view(request, *, orphan_id):
    if not orphans_page_allowed(request.user):
        raise PermissionDenied
    orphan = _orphan_or_404(orphan_id)
    form = DismissForm(request.POST, prefix="dismiss")
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("admin:orphan_payment", orphan_id=orphan.pk)

    def dismiss() -> str:
        orphan_dismiss(orphan_id=orphan.pk, actor=request.user, note=form.cleaned_data["note"])
        return _("Orphan payment %(ref)s is dismissed.") % {"ref": orphan.psp_reference}

    _act(request, dismiss)
    return redirect("admin:orphan_payment", orphan_id=orphan.pk)


def orphan_urls(site) -> list:
    """The orphan pages' URLs, added by ``BackstageSite.get_urls`` (namespace ``admin``)."""
    return [
        path("orphans/", site.admin_view(partial(orphans_queue, site=site)), name="orphans"),
        path(
            "orphans/<uuid:orphan_id>/",
            site.admin_view(partial(orphan_page, site=site)),
            name="orphan_payment",
        ),
        path(
            "orphans/<uuid:orphan_id>/attach/",
            site.admin_view(orphan_attach),
            name="orphan_attach",
        ),
        path(
            "orphans/<uuid:orphan_id>/dismiss/",
            site.admin_view(orphan_dismiss_view),
            name="orphan_dismiss",
        ),
    ]
