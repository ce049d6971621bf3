"""Incident records and reports in Backstage (issue 15 point 3; DESIGN §4, §9).

Compliance officers and super admins (``backstage.services.INCIDENT_ROLES``) list incidents,
open one (by hand, or from an alert: ``?alert=<id>`` prefills it, an untracked mint with its
transaction and recipient), read one with its timeline, add notes, change its status, link
token actions and reconciliation entries, update what is known, and export the report as
Markdown or as a printable page. Pages read through ``backstage.incident_selectors``; every
POST calls one service, a refusal shown in its words."""

from __future__ import annotations

import uuid
from functools import partial

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backstage.incident_selectors import (
    alerts_recent,
    entries_recent,
    funds_shown,
    incident_prefill_from_alert,
    incident_report_markdown,
    incident_timeline,
    token_actions_recent,
)
from backstage.models import Incident
from backstage.services import (
    INCIDENT_ROLES,
    STATUS_EDGES,
    incident_details_set,
    incident_link_action,
    incident_link_alert,
    incident_link_entry,
    incident_note_add,
    incident_open,
    incident_status_set,
)
from core.exceptions import ServiceError
from core.models import Alert
from core.roles import user_has_role

LIST_LIMIT = 200


def incidents_page_allowed(user) -> bool:
    """Compliance officers and super admins (DESIGN §9); the services check again."""
    return user.is_authenticated and user_has_role(user, *INCIDENT_ROLES)


def incident_open_url(user, alert: Alert) -> str:
    """The alert page's "Open incident" link, for those who may open one."""
    if not incidents_page_allowed(user):
        return ""
    return reverse("admin:incident_open") + "?" + urlencode({"alert": alert.pk})


def impacted_url(**params) -> str:
    """Helper C's impacted-addresses page for an address or a transaction ("" while the page
    is not there)."""
    try:
        return reverse("admin:impacted") + "?" + urlencode(params)
    except NoReverseMatch:
        return ""


# --- Forms ----------------------------------------------------------------------------------


class IncidentForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    severity = forms.ChoiceField(label=gettext_lazy("Severity"), choices=Incident.Severity.choices)
    what_happened = forms.CharField(
        label=gettext_lazy("What happened"), widget=forms.Textarea(attrs={"rows": 4})
    )
    tx_hash = forms.CharField(label=gettext_lazy("Transaction hash"), max_length=66, required=False)
    impacted_addresses = forms.CharField(
        label=gettext_lazy("Impacted addresses"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One address per line (0x followed by 40 hex digits)."),
    )
    funds_at_risk_tzs = forms.IntegerField(
        label=gettext_lazy("Funds at risk (TZS)"),
        min_value=0,
        required=False,
        help_text=gettext_lazy("Whole shillings. Leave blank while not yet known (not 0)."),
    )
    funds_lost_tzs = forms.IntegerField(
        label=gettext_lazy("Funds lost (TZS)"),
        min_value=0,
        required=False,
        help_text=gettext_lazy("Whole shillings. Leave blank while not yet known (not 0)."),
    )
    control_added = forms.CharField(
        label=gettext_lazy("Control added"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def values(self) -> dict:
        data = dict(self.cleaned_data)
        data["impacted_addresses"] = data["impacted_addresses"].split()
        return data


class EditForm(IncidentForm):
    reason = forms.CharField(label=gettext_lazy("Why (for the audit)"), required=False)


class NoteForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("Note"), widget=forms.Textarea(attrs={"rows": 3}))


def _form_errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _allowed_or_403(request) -> None:
    if not incidents_page_allowed(request.user):
        raise PermissionDenied


def _incident_or_404(incident_id) -> Incident:
    incident = Incident.objects.select_related("opened_by").filter(pk=incident_id).first()
    if incident is None:
        raise Http404(_("There is no such incident."))
    return incident


# --- Pages ------------------------------------------------------------------------------------


def incident_list(request, *, site):
    _allowed_or_403(request)
    status = request.GET.get("status", "")
    rows = Incident.objects.select_related("opened_by").order_by("-opened_at")
    if status in Incident.Status.values:
        rows = rows.filter(status=status)
    context = {
        **site.each_context(request),
        "title": _("Incidents"),
        "incidents": list(rows[:LIST_LIMIT]),
        "statuses": Incident.Status.choices,
        "status": status,
    }
    return TemplateResponse(request, "backstage/incident_list.html", context)


def incident_open_page(request, *, site):
    """GET: the form, prefilled from ``?alert=``; POST: ``incident_open``."""
    _allowed_or_403(request)
    alert = None
    alert_id = request.GET.get("alert", "")
    initial: dict = {"severity": Incident.Severity.MEDIUM}
    if alert_id.isdigit():
        alert = Alert.objects.filter(pk=int(alert_id)).first()
        if alert is None:
            raise Http404(_("There is no such alert."))
        prefill = incident_prefill_from_alert(alert)
        initial = {
            "title": prefill.title,
            "severity": prefill.severity,
            "what_happened": prefill.what_happened,
            "tx_hash": prefill.tx_hash,
            "impacted_addresses": "\n".join(prefill.impacted_addresses),
        }
    form = IncidentForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                incident = incident_open(
                    actor=request.user, alert_id=alert.pk if alert else None, **form.values()
                )
            except ServiceError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request, _("Incident %(ref)s opened.") % {"ref": incident.reference}
                )
                return redirect("admin:incident", incident_id=incident.pk)
        else:
            messages.error(request, _form_errors(form))
    context = {
        **site.each_context(request),
        "title": _("Open an incident"),
        "form": form,
        "alert": alert,
        "action_url": request.get_full_path(),
    }
    return TemplateResponse(request, "backstage/incident_form.html", context)


def incident_detail(request, *, site, incident_id):
    _allowed_or_403(request)
    incident = _incident_or_404(incident_id)
    context = {
        **site.each_context(request),
        "title": f"{incident.reference}: {incident.title}",
        "incident": incident,
        "timeline": incident_timeline(incident),
        "addresses": [(a, impacted_url(address=a)) for a in incident.impacted_addresses],
        "tx_url": impacted_url(tx=incident.tx_hash) if incident.tx_hash else "",
        "funds_at_risk": funds_shown(incident.funds_at_risk_tzs),
        "funds_lost": funds_shown(incident.funds_lost_tzs),
        "next_statuses": [
            (s, Incident.Status(s).label) for s in sorted(STATUS_EDGES[incident.status])
        ],
        "note_form": NoteForm(),
        "token_actions": token_actions_recent(exclude_incident=incident),
        "entries": entries_recent(exclude_incident=incident),
        "recent_alerts": alerts_recent(exclude_incident=incident),
        "alerts": list(incident.alerts.all()),
    }
    return TemplateResponse(request, "backstage/incident_detail.html", context)


def _post_only(request) -> None:
    if request.method != "POST":
        raise Http404(_("This address takes a form's POST only."))


def incident_note(request, *, incident_id):
    _allowed_or_403(request)
    _post_only(request)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        try:
            incident_note_add(
                incident_id=incident_id, actor=request.user, text=form.cleaned_data["text"]
            )
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Note added."))
    return redirect("admin:incident", incident_id=incident_id)


def incident_status(request, *, incident_id):
    _allowed_or_403(request)
    _post_only(request)
    try:
        incident_status_set(
            incident_id=incident_id,
            actor=request.user,
            from_status=request.POST.get("from_status", ""),
            to_status=request.POST.get("to_status", ""),
            note=request.POST.get("note", ""),
        )
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Status changed."))
    return redirect("admin:incident", incident_id=incident_id)


def incident_link(request, *, incident_id):
    """Link a token action (``action``), a reconciliation entry (``entry``) or another
    alert (``alert``), chosen from the recent ones or pasted by ID."""
    _allowed_or_403(request)
    _post_only(request)
    kind = request.POST.get("kind", "")
    target = (request.POST.get("target", "") or request.POST.get("target_id", "")).strip()
    try:
        # Alerts are numbered; actions and entries have UUIDs.
        target_id = int(target) if kind == "alert" else uuid.UUID(target)
    except ValueError:
        messages.error(request, _("Choose what to link, or paste its ID."))
        return redirect("admin:incident", incident_id=incident_id)
    try:
        if kind == "action":
            incident_link_action(incident_id=incident_id, action_id=target_id, actor=request.user)
        elif kind == "entry":
            incident_link_entry(incident_id=incident_id, entry_id=target_id, actor=request.user)
        elif kind == "alert":
            incident_link_alert(incident_id=incident_id, alert_id=target_id, actor=request.user)
        else:
            raise Http404(_("There is nothing of that kind to link."))
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Linked."))
    return redirect("admin:incident", incident_id=incident_id)


def incident_edit(request, *, site, incident_id):
    _allowed_or_403(request)
    incident = _incident_or_404(incident_id)
    initial = {
        "title": incident.title,
        "severity": incident.severity,
        "what_happened": incident.what_happened,
        "tx_hash": incident.tx_hash,
        "impacted_addresses": "\n".join(incident.impacted_addresses),
        "funds_at_risk_tzs": incident.funds_at_risk_tzs,
        "funds_lost_tzs": incident.funds_lost_tzs,
        "control_added": incident.control_added,
    }
    form = EditForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                incident_details_set(incident_id=incident.pk, actor=request.user, **form.values())
            except ServiceError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, _("Incident updated."))
                return redirect("admin:incident", incident_id=incident.pk)
        else:
            messages.error(request, _form_errors(form))
    context = {
        **site.each_context(request),
        "title": _("Update %(ref)s") % {"ref": incident.reference},
        "form": form,
        "incident": incident,
        "action_url": request.get_full_path(),
    }
    return TemplateResponse(request, "backstage/incident_form.html", context)


def incident_report_md(request, *, incident_id):
    _allowed_or_403(request)
    incident = _incident_or_404(incident_id)
    response = HttpResponse(
        incident_report_markdown(incident), content_type="text/markdown; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{incident.reference}.md"'
    return response


def incident_report_print(request, *, incident_id):
    _allowed_or_403(request)
    incident = _incident_or_404(incident_id)
    context = {
        "incident": incident,
        "timeline": incident_timeline(incident),
        "funds_at_risk": funds_shown(incident.funds_at_risk_tzs),
        "funds_lost": funds_shown(incident.funds_lost_tzs),
    }
    return TemplateResponse(request, "backstage/incident_report.html", context)


def incident_urls(site) -> list:
    """The incident pages, added by ``BackstageSite.get_urls`` (namespace ``admin``)."""
    view = site.admin_view
    one = "incidents/<uuid:incident_id>/"
    return [
        path("incidents/", view(partial(incident_list, site=site)), name="incidents"),
        path("incidents/open/", view(partial(incident_open_page, site=site)), name="incident_open"),
        path(one, view(partial(incident_detail, site=site)), name="incident"),
        path(f"{one}edit/", view(partial(incident_edit, site=site)), name="incident_edit"),
        path(f"{one}note/", view(incident_note), name="incident_note"),
        path(f"{one}status/", view(incident_status), name="incident_status"),
        path(f"{one}link/", view(incident_link), name="incident_link"),
        path(f"{one}report.md", view(incident_report_md), name="incident_report_md"),
        path(f"{one}report/", view(incident_report_print), name="incident_report"),
    ]
