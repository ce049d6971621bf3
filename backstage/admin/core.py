"""Operations views: alerts, the audit log, four-eyes requests and task heartbeats.

Everything here is read-only: the audit and the four-eyes requests are ledgers (a request is
decided only through the checker's screen), an alert changes only through core.services
(acknowledged on its own page, backstage/operations.py; resolved by its condition).

Bank admins (DESIGN §9) see the alerts and the audit rows about their own bank's deposits
only (deposits.selectors); heartbeats and four-eyes requests are about the whole system, so
their role holds no permission for them and they stay hidden."""

from __future__ import annotations

from functools import partial

from django.contrib import admin
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from backstage.admin.base import ReadOnlyAdmin
from backstage.admin.site import site
from backstage.incidents import incident_open_url
from backstage.operations import (
    alert_acknowledge_allowed,
    alert_acknowledge_page,
    alert_may_be_acknowledged,
)
from core.alerts import ALERT_KINDS
from core.clock import now
from core.models import AdminAction, Alert, DualControlRequest, TaskHeartbeat
from core.selectors import task_heartbeat_state
from core.templatetags.site_time import site_time_format
from deposits.selectors import admin_actions_visible_to, alerts_visible_to

DETAIL_SHOWN = 120  # characters of an alert's detail or a task's error in a list row


class _ScopedAdmin(ReadOnlyAdmin):
    """A list whose rows are narrowed per person: an id outside that scope is "not found"
    (404), not Django's redirect to the index, so a bank admin cannot tell a row of another
    bank's from one that does not exist."""

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django's hook for a missing row, reached after the permission check (a 403 still
        # comes first); its default is a redirect to the index with a message.
        raise Http404(gettext("There is no such record."))


def _deposit_link(deposit_id) -> str:
    if not deposit_id:
        return "—"
    url = reverse("admin:deposits_depositrequest_change", args=[deposit_id])
    return format_html('<a class="mono" href="{}">{}</a>', url, str(deposit_id)[:8])


# --- Audit log ---------------------------------------------------------------------------------


@admin.register(AdminAction, site=site)
class AdminActionAdmin(_ScopedAdmin):
    """The audit log. Filter by actor (those who appear in it), action, outcome and target
    type; a target's id goes in the search box (exact, or a deposit's id pasted whole), or
    in the address as ``?target_type=deposit&target_id=…`` (the detail pages link so)."""

    list_display = ("when", "actor", "action", "target", "outcome", "short_reason")
    list_filter = (
        ("actor", admin.RelatedOnlyFieldListFilter),
        "action",
        "target_type",
        "outcome",
    )
    list_select_related = ("actor",)
    search_fields = ("=target_id", "=actor__email", "=action")
    search_help_text = _("A target's ID, an actor's e-mail or an action name, exactly.")
    show_full_result_count = False
    ordering = ("-at", "-id")

    def get_queryset(self, request):
        return admin_actions_visible_to(user=request.user).select_related("actor")

    @admin.display(description=_("time"), ordering="at")
    def when(self, row: AdminAction) -> str:
        return site_time_format(row.at, "seconds")

    @admin.display(description=_("target"), ordering="target_id")
    def target(self, row: AdminAction) -> str:
        if row.target_type == "deposit":
            return format_html("{} {}", row.target_type, _deposit_link(row.target_id))
        if row.target_type == "alert" and row.target_id.isdigit():
            url = reverse("admin:core_alert_change", args=[row.target_id])
            return format_html('{} <a href="{}">{}</a>', row.target_type, url, row.target_id)
        return f"{row.target_type} {row.target_id}"

    @admin.display(description=_("reason"))
    def short_reason(self, row: AdminAction) -> str:
        return Truncator(row.reason).chars(DETAIL_SHOWN)


@admin.register(DualControlRequest, site=site)
class DualControlRequestAdmin(ReadOnlyAdmin):
    list_display = ("made_at", "action", "target_type", "target_id", "maker", "decision")
    list_filter = ("decision", "action")
    list_select_related = ("maker", "checker")
    search_fields = ("target_id",)


# --- Alerts ------------------------------------------------------------------------------------

OPEN, ACKNOWLEDGED, RESOLVED = 0, 1, 2  # the list's order: what needs someone first


class AlertStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("open", _("open, not acknowledged")),
            ("acknowledged", _("open, acknowledged")),
            ("resolved", _("resolved")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
        if self.value() == "acknowledged":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=False)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Alert, site=site)
class AlertAdmin(_ScopedAdmin):
    """Open alerts first, then the acknowledged ones, then the resolved ones (kept: the
    history of what went wrong). Acknowledging is a page of its own with a note."""

    list_display = ("state", "alert", "deposit", "seen", "acknowledgement")
    list_display_links = None  # the alert column links to the detail itself
    list_filter = (AlertStateFilter, "kind")
    search_fields = ("kind", "key")
    list_select_related = ("acknowledged_by",)

    def get_ordering(self, request):
        # state_rank is annotated by get_queryset, so it cannot be the class's ordering
        # (the admin's system check only knows model fields).
        return ("state_rank", "-last_seen", "-id")

    fields = (
        "kind",
        "key",
        "detail",
        "meaning",
        "what_to_do",
        "deposit",
        "first_seen",
        "last_seen",
        "acknowledged_at",
        "acknowledged_by",
        "acknowledgement_note",
        "resolved_at",
    )
    readonly_fields = ("deposit", "meaning", "what_to_do")
    change_form_template = "backstage/alert_change_form.html"

    def get_queryset(self, request):
        return alerts_visible_to(user=request.user).annotate(
            state_rank=Case(
                When(resolved_at__isnull=False, then=Value(RESOLVED)),
                When(acknowledged_at__isnull=False, then=Value(ACKNOWLEDGED)),
                default=Value(OPEN),
                output_field=IntegerField(),
            )
        )

    def get_urls(self):
        view = self.admin_site.admin_view(partial(alert_acknowledge_page, model_admin=self))
        return [
            path(
                "<int:object_id>/acknowledge/",
                view,
                name="operations_alert_acknowledge",
            ),
            *super().get_urls(),
        ]

    def get_list_display(self, request):
        """The state column carries the acknowledge link, which depends on the reader's
        role: a column made for this request (the admin instance is shared by every
        request, so nothing is kept on it)."""

        @admin.display(description=_("state"), ordering="state_rank")
        def state(alert: Alert) -> str:
            url = self._acknowledge_url(request, alert)
            if not url:
                return self.state(alert)
            return format_html(
                '{}<br><a class="button alert-acknowledge" href="{}">{}</a>',
                self.state(alert),
                url,
                _("Acknowledge…"),
            )

        return (state, *self.list_display[1:])

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["alert_acknowledge_url"] = self._acknowledge_url(request, obj)
            context["incident_open_url"] = incident_open_url(request.user, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _acknowledge_url(self, request, alert: Alert) -> str:
        if alert_may_be_acknowledged(alert) and alert_acknowledge_allowed(request):
            return reverse("admin:operations_alert_acknowledge", args=[alert.pk])
        return ""

    @admin.display(description=_("state"), ordering="state_rank")
    def state(self, alert: Alert) -> str:
        if alert.resolved_at is not None:
            return format_html(
                '<span class="alert-state alert-resolved">{}</span><br><small>{}</small>',
                _("resolved"),
                site_time_format(alert.resolved_at),
            )
        if alert.acknowledged_at is not None:
            return format_html(
                '<span class="alert-state alert-acknowledged">{}</span>', _("acknowledged")
            )
        return format_html('<span class="alert-state alert-open">{}</span>', _("open"))

    @admin.display(description=_("alert"), ordering="kind")
    def alert(self, alert: Alert) -> str:
        url = reverse("admin:core_alert_change", args=[alert.pk])
        return format_html(
            '<a href="{}"><strong>{}</strong></a>{}<br>{}',
            url,
            alert.kind,
            format_html(' · <span class="mono">{}</span>', alert.key) if alert.key else "",
            Truncator(alert.detail).chars(DETAIL_SHOWN),
        )

    @admin.display(description=_("deposit"))
    def deposit(self, alert: Alert) -> str:
        return _deposit_link(alert.deposit_id)

    @admin.display(description=_("last seen"), ordering="last_seen")
    def seen(self, alert: Alert) -> str:
        return site_time_format(alert.last_seen)

    @admin.display(description=_("acknowledged"), ordering="acknowledged_at")
    def acknowledgement(self, alert: Alert) -> str:
        if alert.acknowledged_at is None:
            return "—"
        return format_html(
            "{}<br>{}<br><q>{}</q>",
            alert.acknowledged_by,
            site_time_format(alert.acknowledged_at),
            Truncator(alert.acknowledgement_note).chars(DETAIL_SHOWN),
        )

    @admin.display(description=_("what it means"))
    def meaning(self, alert: Alert) -> str:
        kind = ALERT_KINDS.get(alert.kind)
        return kind.meaning if kind else "—"

    @admin.display(description=_("what to do"))
    def what_to_do(self, alert: Alert) -> str:
        kind = ALERT_KINDS.get(alert.kind)
        return kind.action if kind else "—"


# --- Task heartbeats ---------------------------------------------------------------------------


@admin.register(TaskHeartbeat, site=site)
class TaskHeartbeatAdmin(ReadOnlyAdmin):
    """Each periodic task: when it last finished (and how long ago, against its beat
    interval), and its last error."""

    list_display = (
        "task_name",
        "health",
        "age",
        "interval",
        "last_started",
        "last_finished",
        "last_error_at",
        "short_error",
    )
    ordering = ("task_name",)
    search_fields = ("task_name",)

    def _state(self, beat: TaskHeartbeat):
        return task_heartbeat_state(beat, at=now())

    @admin.display(description=_("state"))
    def health(self, beat: TaskHeartbeat) -> str:
        state = self._state(beat).state
        labels = {
            "ok": _("ok"),
            "late": _("late"),
            "failing": _("failing"),
            "never finished": _("never finished"),
        }
        css = state.replace(" ", "-")
        return format_html('<span class="heartbeat heartbeat-{}">{}</span>', css, labels[state])

    @admin.display(description=_("age"), ordering="-last_finished")
    def age(self, beat: TaskHeartbeat) -> str:
        if beat.last_finished is None:
            return "—"
        return gettext("%(age)s ago") % {"age": timesince(beat.last_finished, now())}

    @admin.display(description=_("every"))
    def interval(self, beat: TaskHeartbeat) -> str:
        interval_s = self._state(beat).interval_s
        return "—" if interval_s is None else f"{interval_s} s"

    @admin.display(description=_("last error"))
    def short_error(self, beat: TaskHeartbeat) -> str:
        return Truncator(beat.last_error).chars(DETAIL_SHOWN)
