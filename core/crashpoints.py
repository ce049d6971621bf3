"""Named crash points for the crash-injection tests (test profile only).

``crash_point("name")`` raises SimulatedCrash when the test profile has armed that name in
``settings.CRASH_POINTS``; in every other profile it does nothing and costs nothing. A test
may also hold a step at a point (``settings.PAUSE_POINTS = {"name": callable}``, called
there) to race another worker against it, e.g. a batch held open before its commit."""

from __future__ import annotations

from django.conf import settings


class SimulatedCrash(BaseException):
    """Like a killed process: not an Exception, so no ``except Exception`` swallows it."""


def crash_point(name: str) -> None:
    if getattr(settings, "PROFILE", "") != "test":
        return
    pause = getattr(settings, "PAUSE_POINTS", {}).get(name)
    if pause is not None:
        pause()
    if name in getattr(settings, "CRASH_POINTS", ()):
        raise SimulatedCrash(name)
