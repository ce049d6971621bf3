"""Reads of the core app."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from core.models import Alert, TaskHeartbeat


@dataclass(frozen=True)
class OpenAlerts:
    count: int
    newest: list[Alert]  # the most recently seen first


def alerts_open_summary(*, alerts=None, newest: int = 3) -> OpenAlerts:
    """How many alerts are open and the few seen most recently (the Backstage banner).

    ``alerts`` is the queryset the reader may see (deposits.selectors.alerts_visible_to for a
    member of staff; core does not import deposits); every alert when omitted."""
    if alerts is None:
        alerts = Alert.objects.all()
    open_alerts = alerts.filter(resolved_at__isnull=True)
    return OpenAlerts(
        count=open_alerts.count(),
        newest=list(open_alerts.order_by("-last_seen", "-pk")[:newest]),
    )


@dataclass(frozen=True)
class HeartbeatState:
    """How a periodic task is doing, from its heartbeat row (Backstage's heartbeat list)."""

    state: str  # "ok" | "late" | "failing" | "never finished"
    age: dt.timedelta | None  # since it last finished; None if it never did
    interval_s: int | None  # its beat interval, None for a task not on the beat schedule


def task_heartbeat_state(beat: TaskHeartbeat, *, at: dt.datetime) -> HeartbeatState:
    """A task is failing when its last error is newer than its last success, late when it
    has not finished within twice its beat interval (the readiness rule), else ok."""
    interval_s = settings.BEAT_INTERVALS_S.get(beat.task_name)
    age = at - beat.last_finished if beat.last_finished else None
    finished = beat.last_finished
    if beat.last_error_at and (finished is None or beat.last_error_at > finished):
        state = "failing"
    elif beat.last_finished is None:
        state = "never finished"
    elif interval_s is not None and age > dt.timedelta(seconds=2 * interval_s):
        state = "late"
    else:
        state = "ok"
    return HeartbeatState(state=state, age=age, interval_s=interval_s)
