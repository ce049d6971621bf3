"""Audit, four eyes, alerts and task heartbeats. The audit and the four-eyes requests are
read-only: a request is decided only through the checker's screen (it calls
core.services), never by editing the row."""

from __future__ import annotations

from django.contrib import admin

from backstage.admin.base import ReadOnlyAdmin, RoleAdmin
from backstage.admin.site import site
from core.models import AdminAction, Alert, DualControlRequest, TaskHeartbeat


@admin.register(AdminAction, site=site)
class AdminActionAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "target_type", "target_id", "outcome")
    list_filter = ("action", "outcome")
    list_select_related = ("actor",)
    search_fields = ("target_id", "actor__email")
    show_full_result_count = False


@admin.register(DualControlRequest, site=site)
class DualControlRequestAdmin(ReadOnlyAdmin):
    list_display = ("made_at", "action", "target_type", "target_id", "maker", "decision")
    list_filter = ("decision", "action")
    list_select_related = ("maker", "checker")
    search_fields = ("target_id",)


@admin.register(Alert, site=site)
class AlertAdmin(RoleAdmin):
    list_display = ("kind", "key", "detail", "first_seen", "last_seen", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "kind")
    search_fields = ("kind", "key")


@admin.register(TaskHeartbeat, site=site)
class TaskHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("task_name", "last_started", "last_finished", "last_error_at")
