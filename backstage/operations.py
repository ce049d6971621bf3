"""Operations pages beside the admin's own lists: acknowledging an alert with a note.

The page (GET) shows the alert and what acknowledging does; its POST calls
``core.services.alert_acknowledge``, which checks the role and refuses in its own words (a
missing note, an alert resolved or acknowledged meanwhile). Which alerts a person may see —
and so acknowledge — comes from ``deposits.selectors.alerts_visible_to``: a bank admin gets
"not found" for an alert about another bank's deposit."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backstage.admin.base import request_has_role
from core.alerts import ALERT_KINDS
from core.exceptions import ServiceError
from core.models import Alert
from core.services import ALERT_ACKNOWLEDGERS, alert_acknowledge
from deposits.selectors import alerts_visible_to


class AcknowledgeForm(forms.Form):
    # Not required here: an empty note reaches the service, which refuses it in its words.
    note = forms.CharField(
        label=gettext_lazy("Note: what you are doing about it"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def alert_acknowledge_allowed(request) -> bool:
    """DESIGN §9: bank admins (their bank's deposits' alerts), compliance, super admins."""
    return request_has_role(request, ALERT_ACKNOWLEDGERS)


def alert_may_be_acknowledged(alert: Alert) -> bool:
    return alert.resolved_at is None and alert.acknowledged_at is None


def _visible_alert_or_404(request, alert_id) -> Alert:
    alert = (
        alerts_visible_to(user=request.user)
        .select_related("acknowledged_by")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        raise Http404(_("There is no alert %(id)s.") % {"id": alert_id})
    return alert


def alert_acknowledge_page(request, *, model_admin, object_id):
    if not alert_acknowledge_allowed(request):
        raise PermissionDenied
    alert = _visible_alert_or_404(request, object_id)
    form = AcknowledgeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            alert_acknowledge(
                alert_id=alert.pk,
                actor=request.user,
                note=form.cleaned_data["note"],
                visible_alerts=alerts_visible_to(user=request.user),
            )
        except ServiceError as exc:
            messages.error(request, str(exc))
            alert = _visible_alert_or_404(request, object_id)  # as it is now
        else:
            messages.success(
                request,
                _("Alert %(kind)s acknowledged; it stays open until its condition clears.")
                % {"kind": alert.kind},
            )
            return redirect(reverse("admin:core_alert_changelist"))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Acknowledge alert"),
        "alert": alert,
        "kind": ALERT_KINDS.get(alert.kind),  # what it means and what to do, if registered
        "form": form,
        "open_to_acknowledge": alert_may_be_acknowledged(alert),
    }
    return TemplateResponse(request, "backstage/alert_acknowledge.html", context)
