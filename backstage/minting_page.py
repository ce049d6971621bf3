"""The Backstage minting page: what ``manage.py mint_status`` prints, from the database, the
shared breaker and the last stored minter check — a page view never calls the chain (it must
answer while the RPC node is slow or down, and a flood of views must not reach the provider)
— and the super admin's actions, each a POST with a reason calling the service the command
calls: stop minting, start it (the nonce ledger resynced from the chain as ``minting_start``
does, or kept), today's cap override, and the request to switch MINT_LANE (four eyes: a
second super admin approves it in "Waiting for me"). The services decide; a refusal is shown
in their own words."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.clock import today_utc
from core.exceptions import ServiceError
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, user_has_role
from core.selectors import dual_control_pending, mint_lane_effective
from minting.breaker import rpc_breaker
from minting.chain import ChainError, account_address
from minting.models import MinterCheckRecord
from minting.rpc import mint_client
from minting.selectors import mint_cost_of_day
from minting.services.lanes import MINT_LANE_ENVIRONMENT, MINT_LANE_SET, mint_lane_request
from minting.services.operator import cap_override, mint_status, minting_sending_set


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=500)


class StartForm(ReasonForm):
    keep_ledger = forms.BooleanField(
        label=gettext_lazy("Keep the nonce ledger as it is (no resync from the chain)"),
        required=False,
    )


class CapForm(ReasonForm):
    cap_tzs = forms.IntegerField(label=gettext_lazy("Today's cap (TSh)"), min_value=0)


class LaneForm(ReasonForm):
    lane = forms.ChoiceField(
        label=gettext_lazy("Switch MINT_LANE to"),
        choices=[
            ("safe_only", gettext_lazy("safe_only: every deposit to the Safe lane")),
            ("auto", gettext_lazy("auto: the threshold rule (worker below it, Safe above)")),
            (
                MINT_LANE_ENVIRONMENT,
                gettext_lazy("no override: the environment's MINT_LANE decides"),
            ),
        ],
    )


def minting_page_allowed(user) -> bool:
    """Compliance and super admins (DESIGN §9); bank admins see their bank's deposits only."""
    return user.is_authenticated and user_has_role(user, PLATFORM_COMPLIANCE, SUPER_ADMIN)


def minting_page(request, *, site):
    if not minting_page_allowed(request.user):
        raise PermissionDenied
    can_act = user_has_role(request.user, SUPER_ADMIN)
    context = {
        **site.each_context(request),
        "title": _("Minting"),
        "status": mint_status(),
        "circuit": rpc_breaker().state(),
        "check": MinterCheckRecord.objects.filter(name="minter").first(),
        "cost": mint_cost_of_day(),
        "can_act": can_act,
        "stop_form": ReasonForm(prefix="stop"),
        "start_form": StartForm(prefix="start"),
        "cap_form": CapForm(prefix="cap"),
        "lane": mint_lane_effective(),
        "lane_pending": dual_control_pending(action=MINT_LANE_SET, target_id="MINT_LANE"),
        "lane_form": LaneForm(prefix="lane"),
    }
    return TemplateResponse(request, "backstage/minting.html", context)


def _chain_pending_nonce() -> int:
    return mint_client().w3.eth.get_transaction_count(
        account_address(settings.MINTER_PRIVATE_KEY), "pending"
    )


def _act(request, form, action) -> None:
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return
    try:
        messages.success(request, action(form.cleaned_data))
    except (ServiceError, ChainError) as exc:
        messages.error(request, str(exc))


def _stop(request, data) -> str:
    minting_sending_set(enabled=False, reason=data["reason"], actor=request.user)
    return _("Minting is stopped: no new batch is signed; transactions in flight are confirmed.")


def _start(request, data) -> str:
    pending = None if data["keep_ledger"] else _chain_pending_nonce()
    signer = minting_sending_set(
        enabled=True, reason=data["reason"], actor=request.user, chain_pending_nonce=pending
    )
    if pending is None:
        return _("Minting is started; the nonce ledger is kept.")
    started = _("Minting is started; the nonce ledger is resynced (next nonce %(n)s).")
    return started % {"n": signer.next_nonce}


def _cap(request, data) -> str:
    issuance = cap_override(
        day=today_utc(), cap_tzs=data["cap_tzs"], reason=data["reason"], actor=request.user
    )
    return _("Today's cap is TSh %(cap)s.") % {"cap": issuance.cap_override_tzs}


def _lane(request, data) -> str:
    dual = mint_lane_request(lane=data["lane"], actor=request.user, reason=data["reason"])
    return _(
        "The switch of MINT_LANE to %(lane)s is requested (request %(id)s); it applies once "
        "another super admin approves it in Waiting for me."
    ) % {"lane": dual.params["lane"], "id": dual.pk}


ACTIONS = {
    "stop": (ReasonForm, _stop),
    "start": (StartForm, _start),
    "cap": (CapForm, _cap),
    "lane": (LaneForm, _lane),
}


@require_POST
def minting_action(request, *, name: str):
    """Refusals are the services' (a role, a reason, attempts in flight); only the page's
    own readers (compliance, super admins) get this far."""
    if not minting_page_allowed(request.user):
        raise PermissionDenied
    form_class, action = ACTIONS[name]
    _act(request, form_class(request.POST, prefix=name), lambda data: action(request, data))
    return redirect("admin:minting")
