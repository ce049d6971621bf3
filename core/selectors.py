"""Reads of the core app."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from core.models import Alert, DualControlRequest, MintLane, RuntimeSetting, TaskHeartbeat


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


@dataclass(frozen=True)
class MintLaneState:
    """The effective ``MINT_LANE`` and where it comes from (DESIGN §10)."""

    lane: str  # MintLane: "auto" | "safe_only"
    environment_lane: str  # the MINT_LANE setting, what applies without an override
    overridden: bool
    changed_by: object | None = None  # who approved the override (or its clearing), and when
    changed_at: dt.datetime | None = None
    request_id: object | None = None  # the approved four-eyes request
    requested_by: object | None = None  # its maker

    @property
    def safe_only(self) -> bool:
        return self.lane == MintLane.SAFE_ONLY


def mint_lane_environment() -> str:
    """The environment's MINT_LANE (validated at start-up; a value set some other way that is
    not a lane is read as ``auto``: the threshold rule still applies then)."""
    value = getattr(settings, "MINT_LANE", MintLane.AUTO)
    return value if value in MintLane.values else MintLane.AUTO


def mint_lane_effective() -> MintLaneState:
    """The one answer to "which lane": a super admin's runtime override when one is set,
    else the environment's MINT_LANE. Read on every confirmation and pipeline run (one
    primary-key read), so an approved switch applies at once, in every process."""
    environment = mint_lane_environment()
    row = (
        RuntimeSetting.objects.select_related("changed_by", "request__maker")
        .filter(key=RuntimeSetting.Key.MINT_LANE)
        .first()
    )
    if row is None:
        return MintLaneState(lane=environment, environment_lane=environment, overridden=False)
    overridden = row.value in MintLane.values
    return MintLaneState(
        lane=row.value if overridden else environment,
        environment_lane=environment,
        overridden=overridden,
        changed_by=row.changed_by,
        changed_at=row.changed_at,
        request_id=row.request_id,
        requested_by=row.request.maker if row.request_id else None,
    )


def dual_control_pending(*, action: str, target_id: object) -> DualControlRequest | None:
    """The four-eyes request of ``action`` on ``target_id`` waiting for its checker, if any
    (at most one: a constraint says so)."""
    return (
        DualControlRequest.objects.select_related("maker")
        .filter(
            action=action,
            target_id=str(target_id),
            decision=DualControlRequest.Decision.PENDING,
        )
        .first()
    )
