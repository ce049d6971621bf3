"""Reads of incident records (issue 15 point 3): the prefill of an incident opened from an
alert, the recent token actions and reconciliation entries to link, the timeline and the
report. Nothing here writes or calls the chain."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.db.models import F
from django.utils.translation import gettext as _

from backstage.models import Incident
from core.alerts import UNTRACKED_MINT
from core.models import AdminAction, Alert
from core.money import units_as_ntzs
from core.templatetags.site_time import site_time_format
from reconciliation.models import ChainTransfer, ReconciliationEntry

RECENT_CHOICES = 30  # token actions / entries offered for linking
TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


# --- Opened from an alert -------------------------------------------------------------------


@dataclass(frozen=True)
class AlertPrefill:
    title: str
    what_happened: str
    severity: str
    tx_hash: str = ""
    impacted_addresses: list[str] = field(default_factory=list)


def alert_transaction(alert: Alert) -> tuple[str, int | None]:
    """The transaction an alert is about: an untracked-mint alert's key is ``tx:log``
    (reconciliation.services.matching.untracked_key)."""
    tx_hash, _sep, log_index = alert.key.partition(":")
    if alert.kind != UNTRACKED_MINT or not TX_HASH.match(tx_hash):
        return "", None
    return tx_hash.lower(), int(log_index) if log_index.isdigit() else None


def incident_prefill_from_alert(alert: Alert) -> AlertPrefill:
    """What an incident opened from ``alert`` starts with; the person edits it before
    opening. For an untracked mint: the transaction, its recipient and amount (from the
    indexed log)."""
    tx_hash, log_index = alert_transaction(alert)
    if not tx_hash:
        return AlertPrefill(
            title=f"{alert.kind}: {alert.key}"[:200] if alert.key else alert.kind,
            what_happened=alert.detail,
            severity=Incident.Severity.MEDIUM,
        )
    log = ChainTransfer.objects.filter(tx_hash__iexact=tx_hash, log_index=log_index).first()
    if log is None:
        return AlertPrefill(
            title=_("Untracked mint in %(tx)s") % {"tx": tx_hash},
            what_happened=alert.detail,
            severity=Incident.Severity.HIGH,
            tx_hash=tx_hash,
        )
    amount = units_as_ntzs(int(log.amount_units))
    return AlertPrefill(
        title=_("Untracked mint of %(amount)s nTZS to %(to)s")
        % {"amount": amount, "to": log.to_address},
        what_happened=_(
            "A mint no deposit and no entry explains: %(amount)s nTZS (%(units)s base units) "
            "to %(to)s in transaction %(tx)s, log %(log)s, block %(block)s."
        )
        % {
            "amount": amount,
            "units": log.amount_units,
            "to": log.to_address,
            "tx": tx_hash,
            "log": log.log_index,
            "block": log.block_number,
        },
        severity=Incident.Severity.HIGH,
        tx_hash=tx_hash,
        impacted_addresses=[log.to_address],
    )


# --- Linking ------------------------------------------------------------------------------------


def token_actions_recent(*, exclude_incident: Incident | None = None, limit: int = RECENT_CHOICES):
    """The newest token administration decisions (``token.pause``, a four-eyes
    ``token_unpause.request``, ...), without the execution rows that follow a queued one."""
    rows = (
        AdminAction.objects.filter(action__startswith="token")
        .exclude(params__has_key="queued_action")
        .select_related("actor")
        .order_by("-at", "-pk")
    )
    if exclude_incident is not None:
        rows = rows.exclude(incidents=exclude_incident)
    return list(rows[:limit])


def alerts_recent(*, exclude_incident: Incident | None = None, limit: int = RECENT_CHOICES):
    """The newest alerts, open ones first (another alert of the same incident: the
    unexpected role holder after an untracked mint)."""
    rows = Alert.objects.order_by(F("resolved_at").asc(nulls_first=True), "-last_seen", "-pk")
    if exclude_incident is not None:
        rows = rows.exclude(incidents=exclude_incident)
    return list(rows[:limit])


def entries_recent(*, exclude_incident: Incident | None = None, limit: int = RECENT_CHOICES):
    rows = ReconciliationEntry.objects.order_by("-created_at", "-pk")
    if exclude_incident is not None:
        rows = rows.exclude(incidents=exclude_incident)
    return list(rows[:limit])


# --- The timeline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str  # opened, alert, action, entry, status, note, update
    text: str
    actor: str = ""
    detail: str = ""

    @property
    def when(self) -> str:
        return site_time_format(self.at, "seconds")


def _alert_items(incident: Incident) -> list[TimelineItem]:
    items = []
    for alert in incident.alerts.select_related("acknowledged_by").order_by("first_seen"):
        name = f"{alert.kind}" + (f" ({alert.key})" if alert.key else "")
        items.append(
            TimelineItem(
                alert.first_seen,
                "alert",
                _("Alert raised: %(alert)s") % {"alert": name},
                detail=alert.detail,
            )
        )
        if alert.acknowledged_at:
            items.append(
                TimelineItem(
                    alert.acknowledged_at,
                    "alert",
                    _("Alert acknowledged: %(alert)s") % {"alert": name},
                    actor=str(alert.acknowledged_by or ""),
                    detail=alert.acknowledgement_note,
                )
            )
        if alert.resolved_at:
            items.append(
                TimelineItem(
                    alert.resolved_at, "alert", _("Alert resolved: %(alert)s") % {"alert": name}
                )
            )
    return items


def _action_text(action: AdminAction) -> str:
    target = f"{action.target_type} {action.target_id}"
    return _("%(action)s on %(target)s: %(outcome)s") % {
        "action": action.action,
        "target": target,
        "outcome": action.outcome,
    }


def _action_items(incident: Incident) -> list[TimelineItem]:
    linked = list(incident.admin_actions.select_related("actor"))
    # A token action through the operator key is a chain of rows (queued, sent, done or
    # refused) linked by params.queued_action: linking the decision brings its outcome.
    followers = (
        AdminAction.objects.filter(
            params__queued_action__in=[str(a.pk) for a in linked]
        ).select_related("actor")
        if linked
        else []
    )
    return [
        TimelineItem(a.at, "action", _action_text(a), actor=str(a.actor), detail=a.reason)
        for a in [*linked, *followers]
    ]


def _entry_items(incident: Incident) -> list[TimelineItem]:
    items = []
    for entry in incident.entries.select_related("created_by", "approved_by"):
        units = int(entry.amount_units)
        where = f" {entry.tx_hash}#{entry.log_index}" if entry.tx_hash else ""
        items.append(
            TimelineItem(
                entry.created_at,
                "entry",
                _("Reconciliation entry %(type)s: %(ntzs)s nTZS (%(units)s base units)%(where)s")
                % {
                    "type": entry.entry_type,
                    "ntzs": units_as_ntzs(units),
                    "units": units,
                    "where": where,
                },
                actor=_("made by %(maker)s, approved by %(checker)s")
                % {"maker": entry.created_by, "checker": entry.approved_by},
                detail=entry.reason,
            )
        )
    return items


def _own_items(incident: Incident) -> list[TimelineItem]:
    items = [
        TimelineItem(
            incident.opened_at,
            "opened",
            _("Incident %(ref)s opened") % {"ref": incident.reference},
            actor=str(incident.opened_by),
        )
    ]
    for change in incident.status_changes.select_related("actor"):
        items.append(
            TimelineItem(
                change.at,
                "status",
                _("Status %(old)s → %(new)s")
                % {"old": change.from_status, "new": change.to_status},
                actor=str(change.actor),
                detail=change.note,
            )
        )
    for note in incident.notes.select_related("author"):
        items.append(
            TimelineItem(note.at, "note", _("Note"), actor=str(note.author), detail=note.text)
        )
    updates = AdminAction.objects.filter(
        action="incident.update", target_type="incident", target_id=str(incident.pk)
    ).select_related("actor")
    for update in updates:
        fields = ", ".join(sorted(update.params.get("changed", {})))
        items.append(
            TimelineItem(
                update.at,
                "update",
                _("Record updated: %(fields)s") % {"fields": fields},
                actor=str(update.actor),
                detail=update.reason,
            )
        )
    return items


def incident_timeline(incident: Incident) -> list[TimelineItem]:
    """Everything that happened, oldest first: the linked alerts (raised, acknowledged,
    resolved), the linked admin actions and what followed them, the linked reconciliation
    entries, and the incident's own opening, status changes, notes and updates."""
    items = [
        *_alert_items(incident),
        *_action_items(incident),
        *_entry_items(incident),
        *_own_items(incident),
    ]
    return sorted(items, key=lambda item: item.at)  # stable: ties keep the order above


# --- The report ---------------------------------------------------------------------------------


def funds_shown(value: int | None) -> str:
    if value is None:
        return _("not yet known")
    return f"{value:,} TZS"


def incident_report_markdown(incident: Incident) -> str:
    """The incident report as Markdown (the download; the printable page shows the same)."""
    not_recorded = _("none recorded")
    lines = [
        f"# {incident.reference}: {incident.title}",
        "",
        f"- **{_('Severity')}:** {incident.get_severity_display()}",
        f"- **{_('Status')}:** {incident.get_status_display()}",
        f"- **{_('Opened')}:** {site_time_format(incident.opened_at, 'seconds')} "
        f"({_('by')} {incident.opened_by})",
        f"- **{_('Transaction')}:** {incident.tx_hash or not_recorded}",
        f"- **{_('Funds at risk')}:** {funds_shown(incident.funds_at_risk_tzs)}",
        f"- **{_('Funds lost')}:** {funds_shown(incident.funds_lost_tzs)}",
        "",
        f"## {_('What happened')}",
        "",
        incident.what_happened,
        "",
        f"## {_('Impacted addresses')}",
        "",
        *([f"- `{address}`" for address in incident.impacted_addresses] or [not_recorded]),
        "",
        f"## {_('Control added')}",
        "",
        incident.control_added or not_recorded,
        "",
        f"## {_('Timeline')}",
        "",
        f"| {_('Time')} | {_('What')} | {_('Who')} | {_('Detail')} |",
        "| --- | --- | --- | --- |",
    ]
    for item in incident_timeline(incident):
        cells = [item.when, item.text, item.actor, item.detail]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """A table cell on one line, its pipes escaped."""
    return " ".join((text or "").split()).replace("|", "\\|")
