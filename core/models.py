import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.db.models.lookups import IsNull
from django.utils.translation import gettext_lazy as _

from core.clock import now


class AppendOnlyError(Exception):
    """An attempt to change or delete a record that is append-only (DESIGN §14.5)."""


class AppendOnlyModel(models.Model):
    """Rows are inserted once and never updated or deleted through the ORM instance API.

    Compare-and-set updates of the few mutable columns (a decision, an outcome) go through
    queryset ``update`` in services, guarded by their ``WHERE``.
    """

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are never deleted.")


class AdminAction(AppendOnlyModel):
    """Audit of every human action with a side effect, written in the same transaction."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="admin_actions",
        verbose_name=_("actor"),
    )
    action = models.CharField(max_length=64, verbose_name=_("action"))
    target_type = models.CharField(max_length=64, verbose_name=_("target type"))
    target_id = models.CharField(max_length=64, verbose_name=_("target ID"))
    params = models.JSONField(default=dict, blank=True, verbose_name=_("parameters"))
    outcome = models.CharField(max_length=32, verbose_name=_("outcome"))
    reason = models.TextField(blank=True, verbose_name=_("reason"))
    at = models.DateTimeField(default=now, verbose_name=_("time"))

    class Meta:
        verbose_name = _("admin action")
        verbose_name_plural = _("admin actions")
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),  # a record's audit trail
            # An action's rows in time order: the token-administration redrive runs every
            # minute over the token actions' decisions and outcomes (action IN ..., never a
            # LIKE prefix, which a btree serves only under the C collation).
            models.Index(fields=["action", "at"], name="admin_action_action_at"),
            # The rows of one token action's execution, by the decision they carry. Partial:
            # only those rows have the key, and "= value" implies IS NOT NULL to the planner.
            models.Index(
                KT("params__queued_action"),
                name="admin_action_queued_action",
                condition=Q(IsNull(KT("params__queued_action"), False)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id} by {self.actor_id}"


class DualControlRequest(models.Model):
    """Maker-checker: one home for every four-eyes action (DESIGN §4 core)."""

    class Decision(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        WITHDRAWN = "withdrawn"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    action = models.CharField(max_length=64, verbose_name=_("action"))
    target_type = models.CharField(max_length=64, verbose_name=_("target type"))
    target_id = models.CharField(max_length=64, verbose_name=_("target ID"))
    params = models.JSONField(default=dict, blank=True, verbose_name=_("parameters"))
    evidence = models.TextField(blank=True, verbose_name=_("evidence"))
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="dual_control_made",
        verbose_name=_("maker"),
    )
    made_at = models.DateTimeField(default=now, verbose_name=_("made at"))
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dual_control_checked",
        verbose_name=_("checker"),
    )
    checked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("checked at"))
    decision = models.CharField(
        max_length=16, choices=Decision, default=Decision.PENDING, verbose_name=_("decision")
    )
    reason = models.TextField(blank=True, verbose_name=_("reason"))

    class Meta:
        verbose_name = _("four-eyes request")
        verbose_name_plural = _("four-eyes requests")
        ordering = ["-made_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(checker__isnull=True) | ~Q(checker=F("maker")),
                name="dual_control_checker_is_not_maker",
            ),
            models.CheckConstraint(
                condition=Q(decision__in=["pending", "approved", "rejected", "withdrawn"]),
                name="dual_control_decision_valid",
            ),
            models.UniqueConstraint(
                fields=["action", "target_type", "target_id"],
                condition=Q(decision="pending"),
                name="dual_control_one_pending_per_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id} ({self.decision})"


class Alert(models.Model):
    """An open or resolved alert; fires once per change, not once per run."""

    kind = models.CharField(max_length=64, verbose_name=_("kind"))
    key = models.CharField(max_length=200, blank=True, verbose_name=_("key"))
    detail = models.TextField(blank=True, verbose_name=_("detail"))
    first_seen = models.DateTimeField(default=now, verbose_name=_("first seen"))
    last_seen = models.DateTimeField(default=now, verbose_name=_("last seen"))
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))
    # The deposit an alert is about, when it is about one: bank admins see those of their own
    # bank's deposits only (DESIGN §9). No foreign key: core is the bottom layer.
    deposit_id = models.UUIDField(null=True, blank=True, db_index=True, verbose_name=_("deposit"))
    # Acknowledging says "someone is on it"; it does not resolve (the condition does that).
    acknowledged_at = models.DateTimeField(null=True, blank=True, verbose_name=_("acknowledged at"))
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="alerts_acknowledged",
        verbose_name=_("acknowledged by"),
    )
    acknowledgement_note = models.TextField(blank=True, verbose_name=_("acknowledgement note"))

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"],
                condition=Q(resolved_at__isnull=True),
                name="alert_one_open_per_kind_key",
            )
        ]

    def __str__(self) -> str:
        state = "open" if self.resolved_at is None else "resolved"
        return f"{self.kind}:{self.key} ({state})"


class TaskHeartbeat(models.Model):
    task_name = models.CharField(max_length=200, primary_key=True, verbose_name=_("task name"))
    last_started = models.DateTimeField(null=True, blank=True, verbose_name=_("last started"))
    last_finished = models.DateTimeField(null=True, blank=True, verbose_name=_("last finished"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    last_error_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last error at"))

    class Meta:
        verbose_name = _("task heartbeat")
        verbose_name_plural = _("task heartbeats")

    def __str__(self) -> str:
        return self.task_name


class MintLane(models.TextChoices):
    """Which lane deposits take (DESIGN §10 ``MINT_LANE``): ``auto`` is the threshold rule
    (DESIGN §5), ``safe_only`` sends every deposit to the Safe."""

    AUTO = "auto"
    SAFE_ONLY = "safe_only"


class RuntimeSetting(models.Model):
    """A setting a super admin overrides at runtime, one row per key; it wins over the
    environment's default while ``value`` is set (empty: no override, the environment
    decides). Lower apps read it (the lane rule lives in deposits), so it lives in core.
    Only an approved four-eyes request changes it; the request and an ``AdminAction`` are
    the audit, the row is the current state."""

    class Key(models.TextChoices):
        MINT_LANE = "MINT_LANE"

    key = models.CharField(max_length=64, primary_key=True, choices=Key, verbose_name=_("key"))
    value = models.CharField(max_length=64, blank=True, verbose_name=_("value"))
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runtime_settings_changed",
        verbose_name=_("changed by"),
    )
    changed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("changed at"))
    # The approved four-eyes request that made the change (its maker asked, ``changed_by``
    # approved).
    request = models.ForeignKey(
        DualControlRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("four-eyes request"),
    )

    class Meta:
        verbose_name = _("runtime setting")
        verbose_name_plural = _("runtime settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(key__in=["MINT_LANE"]), name="runtime_setting_key_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value or '(environment)'}"
