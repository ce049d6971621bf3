import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

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
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="admin_actions"
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=32)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["target_type", "target_id"])]  # a record's audit trail

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
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    evidence = models.TextField(blank=True)
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dual_control_made"
    )
    made_at = models.DateTimeField(default=now)
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dual_control_checked",
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=16, choices=Decision, default=Decision.PENDING)
    reason = models.TextField(blank=True)

    class Meta:
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

    kind = models.CharField(max_length=64)
    key = models.CharField(max_length=200, blank=True)
    detail = models.TextField(blank=True)
    first_seen = models.DateTimeField(default=now)
    last_seen = models.DateTimeField(default=now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
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
    task_name = models.CharField(max_length=200, primary_key=True)
    last_started = models.DateTimeField(null=True, blank=True)
    last_finished = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.task_name
