"""Incident records (DESIGN §4 backstage, issue 15 point 3): what happened, what is at stake,
what was done about it, and the links to the alerts, token actions and reconciliation entries
that make up its timeline. Written only through ``backstage.services``."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.clock import now
from core.models import AdminAction, Alert, AppendOnlyModel
from reconciliation.models import ReconciliationEntry


class Incident(models.Model):
    class Severity(models.TextChoices):
        LOW = "low", _("low")
        MEDIUM = "medium", _("medium")
        HIGH = "high", _("high")
        CRITICAL = "critical", _("critical")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        CONTAINED = "contained", _("contained")
        RESOLVED = "resolved", _("resolved")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # INC-YYYY-MM-NNN: NNN counts within the UTC month of opening (``month``, ``sequence``).
    reference = models.CharField(max_length=20, unique=True, verbose_name=_("reference"))
    month = models.CharField(max_length=7, verbose_name=_("month"))  # "YYYY-MM", UTC
    sequence = models.PositiveIntegerField(verbose_name=_("number in the month"))
    title = models.CharField(max_length=200, verbose_name=_("title"))
    severity = models.CharField(max_length=16, choices=Severity, verbose_name=_("severity"))
    status = models.CharField(
        max_length=16, choices=Status, default=Status.OPEN, verbose_name=_("status")
    )
    what_happened = models.TextField(verbose_name=_("what happened"))
    # The transaction it is about, when there is one (an untracked mint's).
    tx_hash = models.CharField(max_length=66, blank=True, verbose_name=_("transaction hash"))
    # EIP-55 addresses, validated by the service.
    impacted_addresses = models.JSONField(
        default=list, blank=True, verbose_name=_("impacted addresses")
    )
    # Whole shillings (1 nTZS = 1 TZS). NULL means "not yet known"; never defaulted to 0,
    # which would claim nothing is at risk.
    funds_at_risk_tzs = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("funds at risk (TZS, whole shillings)")
    )
    funds_lost_tzs = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("funds lost (TZS, whole shillings)")
    )
    control_added = models.TextField(blank=True, verbose_name=_("control added"))
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="incidents_opened",
        verbose_name=_("opened by"),
    )
    opened_at = models.DateTimeField(default=now, verbose_name=_("opened at"))
    alerts = models.ManyToManyField(
        Alert, through="IncidentAlert", related_name="incidents", verbose_name=_("alerts")
    )
    admin_actions = models.ManyToManyField(
        AdminAction,
        through="IncidentAction",
        related_name="incidents",
        verbose_name=_("admin actions"),
    )
    entries = models.ManyToManyField(
        ReconciliationEntry,
        through="IncidentEntry",
        related_name="incidents",
        verbose_name=_("reconciliation entries"),
    )

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-opened_at"]
        constraints = [
            # The reference allocator's guard: two openings at once cannot take one number.
            models.UniqueConstraint(fields=["month", "sequence"], name="incident_number_once"),
            models.CheckConstraint(
                condition=Q(severity__in=["low", "medium", "high", "critical"]),
                name="incident_severity_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "contained", "resolved"]),
                name="incident_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(funds_at_risk_tzs__isnull=True) | Q(funds_at_risk_tzs__gte=0),
                name="incident_funds_at_risk_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(funds_lost_tzs__isnull=True) | Q(funds_lost_tzs__gte=0),
                name="incident_funds_lost_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"


class IncidentStatusChange(AppendOnlyModel):
    """One row per status change, written with the compare-and-set that made it."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(max_length=16, verbose_name=_("from"))
    to_status = models.CharField(max_length=16, verbose_name=_("to"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True, verbose_name=_("note"))
    at = models.DateTimeField(default=now, verbose_name=_("time"))

    class Meta:
        verbose_name = _("incident status change")
        verbose_name_plural = _("incident status changes")
        ordering = ["at", "id"]


class IncidentNote(AppendOnlyModel):
    """A note on the incident's timeline; never edited or deleted (add another)."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("author"),
    )
    text = models.TextField(verbose_name=_("text"))
    at = models.DateTimeField(default=now, verbose_name=_("time"))

    class Meta:
        verbose_name = _("incident note")
        verbose_name_plural = _("incident notes")
        ordering = ["at", "id"]


class _Link(AppendOnlyModel):
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    linked_at = models.DateTimeField(default=now, verbose_name=_("linked at"))

    class Meta:
        abstract = True


class IncidentAlert(_Link):
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT)
    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "alert"], name="incident_alert_once")
        ]


class IncidentAction(_Link):
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT)
    admin_action = models.ForeignKey(AdminAction, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "admin_action"], name="incident_action_once"
            )
        ]


class IncidentEntry(_Link):
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT)
    entry = models.ForeignKey(ReconciliationEntry, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "entry"], name="incident_entry_once")
        ]
