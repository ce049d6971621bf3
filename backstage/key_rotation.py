"""The guided minter-key rotation (issue 15 point 5): a page walking the seven steps of
``minting.services.rotation`` with each step's check read live (the chain and the books), a
check of any address, and one POST per action calling the rotation service; refusals are
shown in the service's words. Super admins only (DESIGN §9). Only addresses appear here: a
key never reaches a template, a message or a log line."""

from __future__ import annotations

import json
from functools import partial

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core.exceptions import ServiceError
from core.models import AdminAction
from core.roles import SUPER_ADMIN, user_has_role
from minting.chain import ChainError
from minting.services.rotation import (
    configured_minter_address,
    key_rotation_begin,
    key_rotation_current,
    key_rotation_finish,
    key_rotation_grant,
    key_rotation_revoke,
    key_rotation_start,
    key_rotation_stop,
    key_rotation_view,
    minter_key_check,
)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=500)


class BeginForm(ReasonForm):
    new_address = forms.CharField(
        label=gettext_lazy("New minter address (0x…)"), max_length=42, min_length=42
    )
    field_order = ["new_address", "reason"]


class CheckForm(forms.Form):
    address = forms.CharField(label=gettext_lazy("Address (0x…)"), max_length=42, min_length=42)


def key_rotation_allowed(user) -> bool:
    """Super admins only: the minter key check and guided rotation (DESIGN §9)."""
    return user.is_authenticated and user_has_role(user, SUPER_ADMIN)


def _key_check(address: str | None):
    """(check, error sentence) for the page's "check a key" box."""
    if not address:
        return None, ""
    try:
        return minter_key_check(address=address), ""
    except ServiceError as exc:
        return None, str(exc)
    except ChainError as exc:
        return None, _("The chain could not be read: %(e)s") % {"e": exc}


def key_rotation_page(request, *, site):
    if not key_rotation_allowed(request.user):
        raise PermissionDenied
    rotation = key_rotation_current()
    check_form = CheckForm(request.GET or None)
    asked = check_form.cleaned_data["address"] if check_form.is_valid() else None
    configured = configured_minter_address()
    context = {
        **site.each_context(request),
        "title": _("Minter key rotation"),
        "rotation": rotation,
        "configured": configured,
        "check_form": check_form,
        "begin_form": BeginForm(prefix="begin"),
        # One form per action, each with its own prefix (no two fields share an id).
        "forms": {name: ReasonForm(prefix=name) for name in ACTIONS if name != "begin"},
    }
    if rotation is None:
        # Before a rotation: what the current key can do, read live.
        context["current_check"], context["current_error"] = _key_check(configured)
    else:
        context["view"] = key_rotation_view(rotation=rotation)
    context["asked_check"], context["asked_error"] = _key_check(asked)
    return TemplateResponse(request, "backstage/key_rotation.html", context)


def _begin(request, form) -> str:
    rotation = key_rotation_begin(
        new_address=form.cleaned_data["new_address"],
        actor=request.user,
        reason=form.cleaned_data["reason"],
    )
    return _("Key rotation begun: from %(old)s to %(new)s. Step 1: stop minting.") % {
        "old": rotation.old_address,
        "new": rotation.new_address,
    }


def _stop(request, form) -> str:
    key_rotation_stop(actor=request.user, reason=form.cleaned_data["reason"])
    return _("Minting is stopped for the old key; transactions in flight are still confirmed.")


def _grant(request, form) -> str:
    result = key_rotation_grant(actor=request.user, reason=form.cleaned_data["reason"])
    return _(
        "Four-eyes request %(id)s made: a second super admin approves it in the four-eyes "
        "queue, which sends the grant with the operator key or gives the Safe payload."
    ) % {"id": result.request_id}


def _start(request, form) -> str:
    signer = key_rotation_start(actor=request.user, reason=form.cleaned_data["reason"])
    return _("Minting is started with %(a)s; the nonce ledger is resynced (next nonce %(n)s).") % {
        "a": signer.address,
        "n": signer.next_nonce,
    }


def _revoke(request, form) -> str:
    result = key_rotation_revoke(actor=request.user, reason=form.cleaned_data["reason"])
    if result.lane == "operator":
        return _("The revoke is queued for the operator key; this page shows the role once mined.")
    return _("Execute the Safe payload below to revoke the role (%(why)s).") % {
        "why": result.lane_reason
    }


def _finish(request, form) -> str:
    key_rotation_finish(actor=request.user, reason=form.cleaned_data["reason"])
    return _("The key rotation is finished.")


def _abandon(request, form) -> str:
    key_rotation_finish(actor=request.user, reason=form.cleaned_data["reason"], abandon=True)
    return _("The key rotation is abandoned; the keys stay as they are now.")


ACTIONS = {
    "begin": (BeginForm, _begin),
    "stop": (ReasonForm, _stop),
    "grant": (ReasonForm, _grant),
    "start": (ReasonForm, _start),
    "revoke": (ReasonForm, _revoke),
    "finish": (ReasonForm, _finish),
    "abandon": (ReasonForm, _abandon),
}


@require_POST
def key_rotation_action(request, *, name: str):
    if not key_rotation_allowed(request.user):
        raise PermissionDenied
    if name not in ACTIONS:
        raise Http404
    form_class, action = ACTIONS[name]
    form = form_class(request.POST, prefix=name)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    else:
        try:
            messages.success(request, action(request, form))
        except (ServiceError, ChainError) as exc:
            messages.error(request, str(exc))
    return redirect("admin:key_rotation")


def key_rotation_payload(request, action_id):
    """The Safe Transaction Builder file of a grant or revoke given the Safe lane."""
    if not key_rotation_allowed(request.user):
        raise PermissionDenied
    action = AdminAction.objects.filter(
        pk=action_id,
        action__in=("token.grant_minter", "token.revoke_minter"),
        outcome="safe_payload",
    ).first()
    if action is None or not action.params.get("batch"):
        raise Http404
    response = HttpResponse(
        json.dumps(action.params["batch"], indent=2), content_type="application/json"
    )
    name = action.action.split(".")[1].replace("_", "-")
    response["Content-Disposition"] = f'attachment; filename="ntzs-{name}-{action.target_id}.json"'
    return response


def key_rotation_urls(site) -> list:
    return [
        path(
            "minting/key-rotation/",
            site.admin_view(partial(key_rotation_page, site=site)),
            name="key_rotation",
        ),
        path(
            "minting/key-rotation/payload/<uuid:action_id>/",
            site.admin_view(key_rotation_payload),
            name="key_rotation_payload",
        ),
        path(
            "minting/key-rotation/<slug:name>/",
            site.admin_view(key_rotation_action),
            name="key_rotation_action",
        ),
    ]
