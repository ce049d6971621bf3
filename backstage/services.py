"""Incident records (issue 15 point 3; DESIGN §4, §9): open one (by hand or from an alert),
add notes, change its status, link the admin actions and reconciliation entries that belong
to it, update what is known. Compliance officers and super admins; every call writes an
``AdminAction`` in the same transaction.

The reference ``INC-YYYY-MM-NNN`` counts within the UTC month of opening. Its number is the
month's highest plus one, inserted under a unique constraint (month, number): two openings at
once that read the same highest number collide on the constraint, and the loser reads again
and takes the next (``REFERENCE_ATTEMPTS``)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from backstage.incident_selectors import TX_HASH, incident_prefill_from_alert
from backstage.models import (
    Incident,
    IncidentAction,
    IncidentAlert,
    IncidentEntry,
    IncidentNote,
    IncidentStatusChange,
)
from core.clock import now
from core.exceptions import ConflictError, NotFound, ServiceError
from core.models import AdminAction, Alert
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, require_role
from core.services import admin_action_record
from minting.services.token_admin import address_normalise
from reconciliation.models import ReconciliationEntry

logger = logging.getLogger("backstage")

INCIDENT_ROLES = (PLATFORM_COMPLIANCE, SUPER_ADMIN)  # DESIGN §9 "incident record and report"
REFERENCE_ATTEMPTS = 10
S = Incident.Status
# Allowed status changes: contain, resolve, and reopen when it comes back.
STATUS_EDGES = {
    S.OPEN: {S.CONTAINED, S.RESOLVED},
    S.CONTAINED: {S.OPEN, S.RESOLVED},
    S.RESOLVED: {S.OPEN},
}
TEXT_MAX = 10_000


class IncidentRefused(ServiceError):
    """An incident operation refused; nothing was written."""


# --- Cleaning --------------------------------------------------------------------------------


def _text(value: str, *, what: str, required: bool = False, max_length: int = TEXT_MAX) -> str:
    value = (value or "").strip()
    if required and not value:
        raise IncidentRefused(_("Say %(what)s: it cannot be blank.") % {"what": what})
    if len(value) > max_length:
        raise IncidentRefused(
            _("Shorten %(what)s to %(max)s characters.") % {"what": what, "max": max_length}
        )
    return value


def _severity(value: str) -> str:
    if value not in Incident.Severity.values:
        raise IncidentRefused(
            _("Choose the severity from %(choices)s.")
            % {"choices": ", ".join(Incident.Severity.values)}
        )
    return value


def _funds(value, *, what: str) -> int | None:
    """Whole shillings, or None for "not yet known" (never turned into 0)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise IncidentRefused(
            _(
                "Give %(what)s as a whole number of shillings (0 or more), or leave it blank "
                "while it is not yet known."
            )
            % {"what": what}
        )
    return value


def _tx_hash(value: str) -> str:
    value = (value or "").strip()
    if value and not TX_HASH.match(value):
        raise IncidentRefused(
            _("%(value)r is not a transaction hash (0x followed by 64 hex digits).")
            % {"value": value}
        )
    return value.lower()


def _addresses(values) -> list[str]:
    """EIP-55 addresses, each once, in the order given."""
    seen: list[str] = []
    for value in values or []:
        if not (value or "").strip():
            continue
        try:
            address = address_normalise(value)
        except ServiceError as exc:
            raise IncidentRefused(str(exc)) from None
        if address not in seen:
            seen.append(address)
    return seen


def _incident(incident_id, *, lock: bool = False) -> Incident:
    rows = Incident.objects.select_for_update() if lock else Incident.objects
    incident = rows.filter(pk=incident_id).first()
    if incident is None:
        raise NotFound(_("There is no incident %(id)s.") % {"id": incident_id})
    return incident


def _audit(*, actor, action: str, incident: Incident, params=None, reason: str = "") -> None:
    admin_action_record(
        actor=actor,
        action=action,
        target_type="incident",
        target_id=incident.pk,
        params={"reference": incident.reference, **(params or {})},
        reason=reason,
    )


# --- Opening ---------------------------------------------------------------------------------


def _insert_numbered(*, at: dt.datetime, values: dict) -> Incident:
    month = at.astimezone(dt.UTC).strftime("%Y-%m")
    for _attempt in range(REFERENCE_ATTEMPTS):
        highest = Incident.objects.filter(month=month).aggregate(n=Max("sequence"))["n"] or 0
        sequence = highest + 1
        try:
            with transaction.atomic():  # a savepoint: a collision leaves the caller's intact
                return Incident.objects.create(
                    reference=f"INC-{month}-{sequence:03d}",
                    month=month,
                    sequence=sequence,
                    opened_at=at,
                    **values,
                )
        except IntegrityError:
            # Another opening took this number a moment ago (it committed while we waited
            # on the unique index): read the month's highest again.
            continue
    raise ConflictError(
        _("Too many incidents were opened at the same moment; open this one again.")
    )


@transaction.atomic(durable=True)
def incident_open(
    *,
    actor,
    title: str,
    what_happened: str,
    severity: str,
    alert_id: int | None = None,
    tx_hash: str = "",
    impacted_addresses=(),
    funds_at_risk_tzs: int | None = None,
    funds_lost_tzs: int | None = None,
    control_added: str = "",
) -> Incident:
    """Open an incident, by hand or from an alert (``alert_id``: linked, and for an
    untracked mint its transaction and recipient taken when not given)."""
    require_role(actor, *INCIDENT_ROLES, doing="open an incident")
    alert = None
    if alert_id is not None:
        alert = Alert.objects.filter(pk=alert_id).first()
        if alert is None:
            raise NotFound(_("There is no alert %(id)s.") % {"id": alert_id})
        prefill = incident_prefill_from_alert(alert)
        tx_hash = tx_hash or prefill.tx_hash
        impacted_addresses = list(impacted_addresses or []) or prefill.impacted_addresses
    values = {
        "title": _text(title, what=_("the title"), required=True, max_length=200),
        "what_happened": _text(what_happened, what=_("what happened"), required=True),
        "severity": _severity(severity),
        "tx_hash": _tx_hash(tx_hash),
        "impacted_addresses": _addresses(impacted_addresses),
        "funds_at_risk_tzs": _funds(funds_at_risk_tzs, what=_("the funds at risk")),
        "funds_lost_tzs": _funds(funds_lost_tzs, what=_("the funds lost")),
        "control_added": _text(control_added, what=_("the control added")),
        "opened_by": actor,
    }
    incident = _insert_numbered(at=now(), values=values)
    if alert is not None:
        IncidentAlert.objects.create(incident=incident, alert=alert, linked_by=actor)
    _audit(
        actor=actor,
        action="incident.open",
        incident=incident,
        params={"severity": incident.severity, "alert_id": alert_id, "tx_hash": incident.tx_hash},
        reason=incident.title,
    )
    logger.warning(
        "Incident opened %s severity=%s by %s%s",
        incident.reference,
        incident.severity,
        actor,
        f" from alert {alert.pk}" if alert else "",
    )
    return incident


# --- Notes, status, details ------------------------------------------------------------------


@transaction.atomic
def incident_note_add(*, incident_id, actor, text: str) -> IncidentNote:
    require_role(actor, *INCIDENT_ROLES, doing="add a note to an incident")
    incident = _incident(incident_id)
    note = IncidentNote.objects.create(
        incident=incident, author=actor, text=_text(text, what=_("the note"), required=True)
    )
    _audit(actor=actor, action="incident.note", incident=incident, params={"note_id": note.pk})
    return note


@transaction.atomic
def incident_status_set(
    *, incident_id, actor, from_status: str, to_status: str, note: str = ""
) -> IncidentStatusChange:
    """Move the incident from ``from_status`` (what the person saw) to ``to_status``; refused
    when someone changed it meanwhile, or when the change is not allowed."""
    require_role(actor, *INCIDENT_ROLES, doing="change an incident's status")
    incident = _incident(incident_id)
    if to_status not in STATUS_EDGES.get(from_status, set()):
        raise IncidentRefused(
            _("An incident does not go from %(old)s to %(new)s.")
            % {"old": from_status, "new": to_status}
        )
    note = _text(note, what=_("the note"))
    updated = Incident.objects.filter(pk=incident.pk, status=from_status).update(status=to_status)
    if updated != 1:
        raise ConflictError(
            _("%(ref)s is no longer %(old)s (someone changed it a moment ago); reload the page.")
            % {"ref": incident.reference, "old": from_status}
        )
    change = IncidentStatusChange.objects.create(
        incident=incident, from_status=from_status, to_status=to_status, actor=actor, note=note
    )
    _audit(
        actor=actor,
        action="incident.status",
        incident=incident,
        params={"from": from_status, "to": to_status},
        reason=note,
    )
    logger.warning("Incident %s %s -> %s by %s", incident.reference, from_status, to_status, actor)
    return change


DETAIL_FIELDS = (
    "title",
    "severity",
    "what_happened",
    "tx_hash",
    "impacted_addresses",
    "funds_at_risk_tzs",
    "funds_lost_tzs",
    "control_added",
)


@transaction.atomic
def incident_details_set(
    *,
    incident_id,
    actor,
    title: str,
    severity: str,
    what_happened: str,
    tx_hash: str = "",
    impacted_addresses=(),
    funds_at_risk_tzs: int | None = None,
    funds_lost_tzs: int | None = None,
    control_added: str = "",
    reason: str = "",
) -> Incident:
    """Record what is now known (the funds once counted, the control added); the audit row
    keeps each changed field's old and new value."""
    require_role(actor, *INCIDENT_ROLES, doing="update an incident")
    incident = _incident(incident_id, lock=True)
    values = {
        "title": _text(title, what=_("the title"), required=True, max_length=200),
        "severity": _severity(severity),
        "what_happened": _text(what_happened, what=_("what happened"), required=True),
        "tx_hash": _tx_hash(tx_hash),
        "impacted_addresses": _addresses(impacted_addresses),
        "funds_at_risk_tzs": _funds(funds_at_risk_tzs, what=_("the funds at risk")),
        "funds_lost_tzs": _funds(funds_lost_tzs, what=_("the funds lost")),
        "control_added": _text(control_added, what=_("the control added")),
    }
    changed = {
        name: [getattr(incident, name), value]
        for name, value in values.items()
        if getattr(incident, name) != value
    }
    if not changed:
        return incident
    for name, (_old, new) in changed.items():
        setattr(incident, name, new)
    incident.save(update_fields=list(changed))
    _audit(
        actor=actor,
        action="incident.update",
        incident=incident,
        params={"changed": changed},
        reason=_text(reason, what=_("the reason")),
    )
    return incident


# --- Links -------------------------------------------------------------------------------------


def _link(*, incident, model, actor, what: str, **target) -> None:
    try:
        with transaction.atomic():
            model.objects.create(incident=incident, linked_by=actor, **target)
    except IntegrityError:
        raise ConflictError(
            _("That %(what)s is already linked to %(ref)s.")
            % {"what": what, "ref": incident.reference}
        ) from None


@transaction.atomic
def incident_link_action(*, incident_id, action_id, actor) -> None:
    """Link an admin action (a ``token.pause``, a freeze, ...) to the incident's timeline."""
    require_role(actor, *INCIDENT_ROLES, doing="link an action to an incident")
    incident = _incident(incident_id)
    action = AdminAction.objects.filter(pk=action_id).first()
    if action is None:
        raise NotFound(_("There is no admin action %(id)s.") % {"id": action_id})
    if action.target_type == "incident":
        raise IncidentRefused(
            _(
                "An incident's own audit rows are already in its timeline; link the action "
                "taken about the incident (a pause, a freeze) instead."
            )
        )
    _link(
        incident=incident, model=IncidentAction, actor=actor, what=_("action"), admin_action=action
    )
    _audit(
        actor=actor,
        action="incident.link_action",
        incident=incident,
        params={"admin_action_id": str(action.pk), "linked": action.action},
    )


@transaction.atomic
def incident_link_entry(*, incident_id, entry_id, actor) -> None:
    """Link a reconciliation entry (the untracked mint explained, a wipe) to the incident."""
    require_role(actor, *INCIDENT_ROLES, doing="link an entry to an incident")
    incident = _incident(incident_id)
    entry = ReconciliationEntry.objects.filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(_("There is no reconciliation entry %(id)s.") % {"id": entry_id})
    _link(incident=incident, model=IncidentEntry, actor=actor, what=_("entry"), entry=entry)
    _audit(
        actor=actor,
        action="incident.link_entry",
        incident=incident,
        params={"entry_id": str(entry.pk), "entry_type": entry.entry_type},
    )


@transaction.atomic
def incident_link_alert(*, incident_id, alert_id, actor) -> None:
    require_role(actor, *INCIDENT_ROLES, doing="link an alert to an incident")
    incident = _incident(incident_id)
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(_("There is no alert %(id)s.") % {"id": alert_id})
    _link(incident=incident, model=IncidentAlert, actor=actor, what=_("alert"), alert=alert)
    _audit(
        actor=actor,
        action="incident.link_alert",
        incident=incident,
        params={"alert_id": alert.pk, "kind": alert.kind},
    )
