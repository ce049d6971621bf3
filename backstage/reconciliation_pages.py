"""Reconciliation in Backstage (DESIGN §8, §9; issue 14 point 11): what the indexed chain says
against the books — untracked mints, Safe mints awaiting their record, missing mints,
unexplained burns, mints in flight (apart: they settle by themselves) — and whether the
untracked-mint alarm is armed, with links to the entries and the supply snapshots.

Compliance officers and super admins read the page; only super admins act (DESIGN §9):
"record an entry" (``reconciliation.services.entries``) and "attach this log to a deposit"
(``reconciliation.services.attach``), both four-eyes requests a second super admin decides
in "Waiting for me". The lists come from ``reconciliation.selectors``; the services decide
and refuse, a refusal shown in their words."""

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
from eth_utils import is_address, to_checksum_address

from core.exceptions import ServiceError
from core.models import DualControlRequest
from core.money import tzs_to_units, units_as_ntzs
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, user_has_role
from deposits.models import DepositRequest
from reconciliation.models import ChainTransfer, ReconciliationEntry
from reconciliation.selectors import (
    mints_awaiting_record,
    mints_in_flight,
    missing_mints,
    transfers_cursor,
    unexplained_burns,
    untracked_alarm_armed,
    untracked_mints,
)
from reconciliation.services.attach import (
    ATTACH_ACTION,
    ATTACHABLE,
    reconciliation_log_attach_request,
)
from reconciliation.services.entries import ENTRY_ACTION, reconciliation_entry_request

LIST_LIMIT = 200  # rows shown per list; the count says when there are more
ET = ReconciliationEntry.EntryType


def reconciliation_page_allowed(user) -> bool:
    """Compliance officers and super admins read reconciliation (DESIGN §9)."""
    return user.is_authenticated and user_has_role(user, PLATFORM_COMPLIANCE, SUPER_ADMIN)


def reconciliation_may_act(user) -> bool:
    """Entries and attaching a log are super admins' (DESIGN §9); the services check again."""
    return user.is_authenticated and user_has_role(user, SUPER_ADMIN)


# --- Forms ----------------------------------------------------------------------------------


class EntryForm(forms.Form):
    entry_type = forms.ChoiceField(label=gettext_lazy("Entry type"), choices=ET.choices)
    # Text, not an IntegerField: base units exceed what a browser's number input keeps exact.
    amount_units = forms.RegexField(
        label=gettext_lazy("Amount (base units, signed)"),
        regex=r"^-?[0-9]{1,80}$",
        max_length=81,
        help_text=gettext_lazy(
            "Exact base units, 10**18 per nTZS: positive for supply that exists on chain "
            "(untracked, test, double mint, opening balance), negative for a burn or a wipe."
        ),
        error_messages={
            "invalid": gettext_lazy("Give the amount as a whole number of base units.")
        },
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2_000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    evidence = forms.CharField(
        label=gettext_lazy("Evidence for the checker"),
        max_length=4_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    tx_hash = forms.CharField(label=gettext_lazy("Transaction hash"), max_length=66, required=False)
    log_index = forms.IntegerField(label=gettext_lazy("Log index"), min_value=0, required=False)
    to_address = forms.CharField(label=gettext_lazy("Address"), max_length=42, required=False)
    block_number = forms.IntegerField(
        label=gettext_lazy("Block"),
        min_value=0,
        required=False,
        help_text=gettext_lazy("An opening balance states the supply at this block."),
    )


class AttachForm(forms.Form):
    deposit_id = forms.UUIDField(label=gettext_lazy("Deposit ID"))
    evidence = forms.CharField(
        label=gettext_lazy("Evidence for the checker"),
        max_length=4_000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


# --- Reads ------------------------------------------------------------------------------------


def _bounded(rows) -> dict:
    """A list read one row past the limit: the rows shown and whether more exist."""
    rows = list(rows)
    return {"rows": rows[:LIST_LIMIT], "more": len(rows) > LIST_LIMIT, "count": len(rows)}


def _counted(queryset) -> dict:
    return {"rows": list(queryset[:LIST_LIMIT]), "more": False, "count": queryset.count()}


def attach_candidates(logs: list[ChainTransfer]) -> dict[int, list[DepositRequest]]:
    """For each mint log, the deposits it could be attached to: an attachable status, the
    log's recipient as wallet and exactly the deposit's amount (one query for the page)."""
    whole = {
        log.pk: (to_checksum_address(log.to_address), int(log.amount_units) // tzs_to_units(1))
        for log in logs
        if is_address(log.to_address) and int(log.amount_units) % tzs_to_units(1) == 0
    }
    found: dict[int, list[DepositRequest]] = {log.pk: [] for log in logs}
    if not whole:
        return found
    deposits = list(
        DepositRequest.objects.filter(
            status__in=ATTACHABLE,
            wallet__address__in={address for address, _ in whole.values()},
            amount_tzs__in={amount for _, amount in whole.values()},
        )
        .select_related("wallet", "user")
        .order_by("created_at")[:1_000]
    )
    for pk, (address, amount) in whole.items():
        found[pk] = [
            d
            for d in deposits
            if to_checksum_address(d.wallet.address) == address and d.amount_tzs == amount
        ]
    return found


def _pending_requests() -> list[DualControlRequest]:
    return list(
        DualControlRequest.objects.filter(
            action__in=(ENTRY_ACTION, ATTACH_ACTION),
            decision=DualControlRequest.Decision.PENDING,
        )
        .select_related("maker")
        .order_by("made_at")[:LIST_LIMIT]
    )


def _waiting_logs(pending: list[DualControlRequest]) -> set[tuple[str, int]]:
    return {
        (r.params.get("tx_hash"), r.params.get("log_index"))
        for r in pending
        if r.params.get("tx_hash")
    }


def reconciliation_context() -> dict:
    untracked = _bounded(untracked_mints(limit=LIST_LIMIT + 1))
    awaiting = _bounded(mints_awaiting_record(limit=LIST_LIMIT + 1))
    candidates = attach_candidates(untracked["rows"] + awaiting["rows"])
    pending = _pending_requests()
    waiting = _waiting_logs(pending)
    burns = _counted(unexplained_burns())
    in_flight = _counted(mints_in_flight())
    for log in untracked["rows"] + awaiting["rows"] + burns["rows"] + in_flight["rows"]:
        log.ntzs = units_as_ntzs(int(log.amount_units))  # exact nTZS beside the base units
        log.waiting = (log.tx_hash, log.log_index) in waiting
        log.candidates = candidates.get(log.pk, [])
    return {
        "alarm": untracked_alarm_armed(),
        "cursor": transfers_cursor(),
        "untracked": untracked,
        "awaiting": awaiting,
        "missing": _counted(missing_mints()),
        "burns": burns,
        "in_flight": in_flight,
        "pending": pending,
    }


# --- Pages ------------------------------------------------------------------------------------


def reconciliation_page(request, *, site):
    if not reconciliation_page_allowed(request.user):
        raise PermissionDenied
    context = {
        **site.each_context(request),
        "title": _("Reconciliation"),
        "can_act": reconciliation_may_act(request.user),
        **reconciliation_context(),
    }
    return TemplateResponse(request, "backstage/reconciliation.html", context)


def _log_or_404(transfer_id) -> ChainTransfer:
    log = ChainTransfer.objects.filter(pk=transfer_id).first()
    if log is None:
        raise Http404(_("There is no indexed log %(id)s.") % {"id": transfer_id})
    return log


def _entry_initial(request) -> tuple[dict, ChainTransfer | None]:
    """The form prefilled from the log it explains (``?log=``) or as an opening balance
    (``?type=opening_balance``: the supply before the block where indexing began)."""
    log_id = request.GET.get("log", "")
    if log_id.isdigit():
        log = _log_or_404(int(log_id))
        units = int(log.amount_units)
        if log.kind == ChainTransfer.Kind.BURN:
            initial = {
                "entry_type": ET.BURN,
                "amount_units": str(-units),
                "to_address": log.from_address,
            }
        else:
            initial = {
                "entry_type": ET.UNTRACKED_MINT,
                "amount_units": str(units),
                "to_address": log.to_address,
            }
        initial.update({"tx_hash": log.tx_hash, "log_index": log.log_index})
        return initial, log
    if request.GET.get("type") == ET.OPENING_BALANCE:
        initial = {"entry_type": ET.OPENING_BALANCE}
        cursor = transfers_cursor()
        if cursor is not None and cursor.first_block is not None:
            initial["block_number"] = max(cursor.first_block - 1, 0)
            if cursor.supply_before_units is not None:
                initial["amount_units"] = str(int(cursor.supply_before_units))
        return initial, None
    return {}, None


def _form_errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def reconciliation_entry(request, *, site):
    """GET: the maker's form, prefilled; POST: the four-eyes request (the service decides)."""
    if not reconciliation_page_allowed(request.user):
        raise PermissionDenied
    initial, log = _entry_initial(request)
    form = EntryForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                made = reconciliation_entry_request(
                    maker=request.user,
                    entry_type=data["entry_type"],
                    amount_units=int(data["amount_units"]),
                    reason=data["reason"],
                    tx_hash=data["tx_hash"],
                    log_index=data["log_index"],
                    to_address=data["to_address"],
                    block_number=data["block_number"],
                    evidence=data["evidence"],
                )
            except ServiceError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request,
                    _(
                        "Entry requested (four-eyes request %(id)s): another super admin "
                        "approves or rejects it in Waiting for me."
                    )
                    % {"id": made.pk},
                )
                return redirect("admin:reconciliation")
        else:
            messages.error(request, _form_errors(form))
    elif not reconciliation_may_act(request.user):
        raise PermissionDenied  # compliance reads the lists; entries are super admins'
    context = {
        **site.each_context(request),
        "title": _("Record a reconciliation entry"),
        "form": form,
        "log": log,
        "log_ntzs": units_as_ntzs(int(log.amount_units)) if log else "",
    }
    return TemplateResponse(request, "backstage/reconciliation_entry.html", context)


def reconciliation_attach(request, *, site, transfer_id):
    """GET: the log, the deposits it matches and what the approval will do; POST: the
    four-eyes request (the service reads the chain and decides)."""
    if not reconciliation_page_allowed(request.user):
        raise PermissionDenied
    log = _log_or_404(transfer_id)
    if log.kind != ChainTransfer.Kind.MINT:
        raise Http404(_("Only a mint log is attached to a deposit."))
    candidates = attach_candidates([log])[log.pk]
    initial = {"deposit_id": candidates[0].pk} if len(candidates) == 1 else {}
    form = AttachForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                made = reconciliation_log_attach_request(
                    maker=request.user,
                    deposit_id=form.cleaned_data["deposit_id"],
                    tx_hash=log.tx_hash,
                    log_index=log.log_index,
                    evidence=form.cleaned_data["evidence"],
                )
            except ServiceError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request,
                    _(
                        "Attach requested (four-eyes request %(id)s): another super admin "
                        "approves or rejects it in Waiting for me."
                    )
                    % {"id": made.pk},
                )
                return redirect("admin:reconciliation")
        else:
            messages.error(request, _form_errors(form))
    elif not reconciliation_may_act(request.user):
        raise PermissionDenied
    context = {
        **site.each_context(request),
        "title": _("Attach a mint log to a deposit"),
        "log": log,
        "log_ntzs": units_as_ntzs(int(log.amount_units)),
        "candidates": candidates,
        "form": form,
    }
    return TemplateResponse(request, "backstage/reconciliation_attach.html", context)


def reconciliation_urls(site) -> list:
    """The reconciliation pages' URLs, added by ``BackstageSite.get_urls`` (namespace
    ``admin``)."""
    return [
        path(
            "reconciliation/",
            site.admin_view(partial(reconciliation_page, site=site)),
            name="reconciliation",
        ),
        path(
            "reconciliation/entry/",
            site.admin_view(partial(reconciliation_entry, site=site)),
            name="reconciliation_entry",
        ),
        path(
            "reconciliation/logs/<int:transfer_id>/attach/",
            site.admin_view(partial(reconciliation_attach, site=site)),
            name="reconciliation_attach",
        ),
    ]
