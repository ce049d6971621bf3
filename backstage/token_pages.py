"""Token administration in Backstage (issue 15 point 1; DESIGN §9, §12): the token's state
read back from the contract now (``paused``; for an address ``isFrozen``, ``isBlacklisted``,
balance and ``MINTER_ROLE``), the actions of ``minting.services.token_admin`` — pause, freeze,
blacklist and revoke MINTER_ROLE (one person), unpause, unfreeze, unblacklist, wipe and grant
MINTER_ROLE (a four-eyes request a second super admin decides in "Waiting for me") — and the
outcome of each: queued for the operator key (the result page shows the execution's
``AdminAction`` chain: signed, sent, done or refused with the state read back) or the Safe
payload (the exact call and the Transaction Builder batch file to download).

Super admins only. A confirmation page (GET) shows exactly what will happen — the call, the
lane it would take now, the target's state — and its POST calls the service; refusals are
shown in the service's words. The views read the chain (state, lane) but never send: the
operator key's transaction is the worker's (``minting.tasks.token_admin_execute``). An
unreadable chain is a sentence on the page, not an error."""

from __future__ import annotations

import json
from functools import partial

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from backstage.safe_lane import REFUSALS, refusal_text
from core.exceptions import NotFound, ServiceError
from core.money import units_as_ntzs
from core.roles import SUPER_ADMIN, user_has_role
from deposits.models import DepositRequest
from minting.chain import ChainError, account_address
from minting.services import token_admin as services

RECENT_LIMIT = 50
MINTER_ROLE = "MINTER_ROLE"

# What each operation does, in the words a person decides on.
LABELS = {
    "pause": gettext_lazy("Pause the token"),
    "unpause": gettext_lazy("Unpause the token"),
    "freeze": gettext_lazy("Freeze"),
    "unfreeze": gettext_lazy("Unfreeze"),
    "blacklist": gettext_lazy("Blacklist"),
    "unblacklist": gettext_lazy("Unblacklist"),
    "wipe": gettext_lazy("Wipe"),
    "grant_minter": gettext_lazy("Grant MINTER_ROLE"),
    "revoke_minter": gettext_lazy("Revoke MINTER_ROLE"),
}
EFFECTS = {
    "pause": gettext_lazy(
        "Every transfer, mint and burn of nTZS stops at once; the mint worker waits (deposits "
        "stay mint_pending with the reason). One person: an emergency must not wait."
    ),
    "unpause": gettext_lazy(
        "Transfers, mints and burns resume, and the waiting deposits mint. A second super "
        "admin decides."
    ),
    "freeze": gettext_lazy("The address can no longer send or receive nTZS. One person."),
    "unfreeze": gettext_lazy(
        "The address can send and receive again. A second super admin decides."
    ),
    "blacklist": gettext_lazy(
        "The address can no longer send, receive or be minted to; the open deposits to its "
        "wallet are held (releasing them needs the unblacklist first). One person."
    ),
    "unblacklist": gettext_lazy(
        "The address leaves the blacklist; its held deposits can then be released. A second "
        "super admin decides."
    ),
    "wipe": gettext_lazy(
        "Burns the whole balance of the blacklisted address. Once the burn is indexed, a "
        "negative wipe reconciliation entry explains it (maker and checker of this request "
        "recorded on it). A second super admin decides."
    ),
    "grant_minter": gettext_lazy(
        "The address may mint nTZS (key rotation: the new minter key). A second super admin "
        "decides."
    ),
    "revoke_minter": gettext_lazy(
        "The address may no longer mint (a retired or exposed minter key). One person."
    ),
}


SERVICES = services.TOKEN_ACTION_SERVICES


def token_pages_allowed(user) -> bool:
    """Super admins only (DESIGN §9); the services check the role again."""
    return user.is_authenticated and user_has_role(user, SUPER_ADMIN)


def _require_allowed(request) -> None:
    if not token_pages_allowed(request.user):
        raise PermissionDenied


class ActForm(forms.Form):
    address = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    # Not required here: an empty reason reaches the service, which refuses it in its words.
    reason = forms.CharField(
        label=gettext_lazy("Reason (goes into the audit log)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


# --- Reads -------------------------------------------------------------------------------------


def _chain_sentence(exc: Exception) -> str:
    return _("The token's state could not be read from the chain (%(error)s); try again.") % {
        "error": str(exc) if isinstance(exc, ServiceError | ChainError) else type(exc).__name__
    }


def _state(address: str | None) -> tuple[dict | None, str]:
    """The contract's answer now, or None and the sentence saying why not."""
    try:
        state = services.token_admin_status(address=address, role=MINTER_ROLE if address else "")
    except REFUSALS as exc:
        return None, _chain_sentence(exc)
    if "balance_units" in state:
        state["balance_ntzs"] = units_as_ntzs(state["balance_units"])
    return state, ""


def _stored_state(row) -> dict | None:
    """The state a ``done`` / ``refused`` row read back, its balance shown in nTZS too."""
    state = dict((row.params or {}).get("state") or {}) if row is not None else {}
    if not state:
        return None
    if "balance_units" in state:
        state["balance_ntzs"] = units_as_ntzs(int(state["balance_units"]))
    return state


def _address_or_none(request, value: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return services.address_normalise(value)
    except ServiceError as exc:
        messages.error(request, str(exc))
        return None


def _operator_text() -> str:
    if not settings.OPERATOR_PRIVATE_KEY:
        return _("not set: every action produces a Safe payload for the signers")
    return _(
        "%(address)s: an action goes through it when it holds the action's role, otherwise "
        "as a Safe payload"
    ) % {"address": account_address(settings.OPERATOR_PRIVATE_KEY)}


def _operations(*, takes_address: bool) -> list[dict]:
    return [
        {
            "name": op.name,
            "label": LABELS[op.name],
            "four_eyes": op.four_eyes,
            "role": op.role,
        }
        for op in services.OPERATIONS.values()
        if op.takes_address is takes_address
    ]


# --- Pages -------------------------------------------------------------------------------------


def token_admin_page(request, *, site, address: str = ""):
    _require_allowed(request)
    holder = _address_or_none(request, address or request.GET.get("address", ""))
    state, chain_error = _state(holder)
    context = {
        **site.each_context(request),
        "title": _("Token administration"),
        "holder": holder,
        "looked_up": (address or request.GET.get("address", "")).strip(),
        "state": state,
        "chain_error": chain_error,
        "operator": _operator_text(),
        "token_operations": _operations(takes_address=False),
        "address_operations": _operations(takes_address=True),
        "pending": services.token_admin_requests_pending(),
        "recent": services.token_admin_actions_recent(limit=RECENT_LIMIT),
        "labels": LABELS,
    }
    return TemplateResponse(request, "backstage/token_admin.html", context)


def token_admin_contract(request, *, site, contract: str):
    """The four-eyes page's link for a token-wide request: the token page itself."""
    return token_admin_page(request, site=site)


def _preview(op, holder: str | None) -> dict:
    """Exactly what the action would do, read now: the call, the lane, the target's state,
    the deposits a blacklist would hold."""
    preview: dict = {"call": None, "lane": None, "refusal": ""}
    try:
        if not settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA:
            raise ServiceError(
                _("NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA is not set, so there is no token to act on.")
            )
        preview["call"] = services.token_admin_call(op, holder)
    except REFUSALS as exc:
        preview["refusal"] = refusal_text(exc)
        return preview
    preview["lane"] = services.token_admin_lane(op)  # falls back to the Safe when unreadable
    preview["state"], preview["chain_error"] = _state(holder)
    if op.name == "blacklist" and holder:
        preview["to_hold"] = list(
            DepositRequest.objects.filter(
                wallet__address__iexact=holder,
                status__in=services.OPEN_STATUSES,
                hold_reason="",
            ).order_by("created_at")[:50]
        )
    return preview


@require_http_methods(["GET", "HEAD", "POST"])
def token_admin_act(request, *, site, operation: str):
    """GET: what will happen (reads only). POST: the service; a four-eyes request goes back
    to the token page, an executed one to its result."""
    _require_allowed(request)
    op = services.OPERATIONS.get(operation)
    if op is None:
        raise Http404(_("There is no token operation %(name)s.") % {"name": operation})
    source = request.POST if request.method == "POST" else request.GET
    holder = None
    if op.takes_address:
        holder = _address_or_none(request, source.get("address", ""))
        if holder is None:
            if not source.get("address", "").strip():
                messages.error(request, _("Name the address to %(op)s.") % {"op": op.name})
            return redirect("admin:token_admin")
    form = ActForm(request.POST if request.method == "POST" else None, initial={"address": holder})
    if request.method == "POST" and form.is_valid():
        kwargs = {"actor": request.user, "reason": form.cleaned_data["reason"]}
        if op.takes_address:
            kwargs["address"] = holder
        try:
            result = SERVICES[op.name](**kwargs)
        except REFUSALS as exc:
            messages.error(request, refusal_text(exc))
        else:
            return _after(request, op, result, holder)
    context = {
        **site.each_context(request),
        "title": LABELS[op.name],
        "op": op,
        "label": LABELS[op.name],
        "effect": EFFECTS[op.name],
        "holder": holder,
        "preview": _preview(op, holder),
        "form": form,
    }
    return TemplateResponse(request, "backstage/token_admin_act.html", context)


def _after(request, op, result: services.TokenAdminResult, holder: str | None):
    if result.lane == "four_eyes":
        messages.success(
            request,
            _(
                "Four-eyes request %(id)s is made (%(label)s); another super admin decides it in "
                "Waiting for me. Nothing is sent before then."
            )
            % {"id": result.request_id, "label": LABELS[op.name]},
        )
        if holder:
            return redirect("admin:token_admin_address", address=holder)
        return redirect("admin:token_admin")
    if result.held_deposits:
        messages.warning(
            request,
            _("%(n)s open deposit(s) to the wallet are held until the unblacklist.")
            % {"n": len(result.held_deposits)},
        )
    if result.lane == "operator":
        messages.success(
            request,
            _(
                "%(label)s is queued for the operator key; the worker sends it and this page "
                "shows the state read back once it is mined."
            )
            % {"label": LABELS[op.name]},
        )
    else:
        messages.success(
            request,
            _(
                "%(label)s is ready as a Safe payload: download the batch file, load it in the "
                "Safe Transaction Builder, and check the state here once the Safe has executed it."
            )
            % {"label": LABELS[op.name]},
        )
    return redirect("admin:token_admin_action", action_id=result.action_id)


def token_admin_result(request, *, site, action_id):
    """One token action: the decision, its execution's rows, the state read back now."""
    _require_allowed(request)
    try:
        decision = services.token_admin_decision(action_id=action_id)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    executions = services.token_admin_executions(action_id=decision.pk)
    final = next((row for row in reversed(executions) if row.outcome in services.FINAL), None)
    holder = decision.target_id if decision.target_type == "address" else None
    op = services.OPERATIONS[decision.params["operation"]]
    state, chain_error = _state(holder)
    context = {
        **site.each_context(request),
        "title": _("Token action: %(label)s") % {"label": LABELS[op.name]},
        "decision": decision,
        "op": op,
        "label": LABELS[op.name],
        "lane": decision.params.get("lane"),
        "call": decision.params.get("call"),
        "executions": [(row, _stored_state(row)) for row in executions],
        "final": final,
        "waiting": decision.outcome == "queued" and final is None,
        "request_link": (
            reverse("admin:four_eyes_decision", args=[decision.params["request_id"]])
            if decision.params.get("request_id")
            else ""
        ),
        "holder": holder,
        "state": state,
        "chain_error": chain_error,
    }
    return TemplateResponse(request, "backstage/token_admin_result.html", context)


def token_admin_batch(request, *, site, action_id):
    """The Transaction Builder batch file of a Safe-lane token action (kept in its
    ``AdminAction``: the same bytes each time)."""
    _require_allowed(request)
    try:
        decision = services.token_admin_decision(action_id=action_id)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    batch = decision.params.get("batch")
    if decision.outcome != "safe_payload" or not batch:
        raise Http404(
            _("Token action %(id)s went to the operator key: it has no Safe payload.")
            % {"id": action_id}
        )
    response = HttpResponse(json.dumps(batch, indent=2) + "\n", content_type="application/json")
    name = f"ntzs-token-{decision.params['operation']}-{decision.pk}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


def token_urls(site) -> list:
    """The token pages' URLs, added by ``BackstageSite.get_urls`` (namespace ``admin``)."""
    page = site.admin_view(partial(token_admin_page, site=site))
    return [
        path("token/", page, name="token_admin"),
        # The four-eyes decision page links its target here (target types "address", "token").
        path("token/address/<str:address>/", page, name="token_admin_address"),
        path(
            "token/contract/<str:contract>/",
            site.admin_view(partial(token_admin_contract, site=site)),
            name="token_admin_contract",
        ),
        path(
            "token/do/<str:operation>/",
            site.admin_view(partial(token_admin_act, site=site)),
            name="token_admin_act",
        ),
        path(
            "token/action/<uuid:action_id>/",
            site.admin_view(partial(token_admin_result, site=site)),
            name="token_admin_action",
        ),
        path(
            "token/action/<uuid:action_id>/batch/",
            site.admin_view(partial(token_admin_batch, site=site)),
            name="token_admin_batch",
        ),
    ]
