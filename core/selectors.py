"""Reads of the core app."""

from __future__ import annotations

from dataclasses import dataclass

from core.models import Alert


@dataclass(frozen=True)
class OpenAlerts:
    count: int
    newest: list[Alert]  # the most recently seen first


def alerts_open_summary(*, newest: int = 3) -> OpenAlerts:
    """How many alerts are open and the few seen most recently (the Backstage banner)."""
    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    return OpenAlerts(
        count=open_alerts.count(),
        newest=list(open_alerts.order_by("-last_seen", "-pk")[:newest]),
    )
