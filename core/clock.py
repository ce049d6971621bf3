"""The one source of "now" and "today" (UTC). Computed in Python, never by SQL, so tests can
freeze time and an operation computes its day once."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()


def today_utc() -> dt.date:
    return now().astimezone(dt.UTC).date()
