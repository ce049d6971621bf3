"""Named crash points for the crash-injection tests (test profile only).

``crash_point("name")`` raises SimulatedCrash when the test profile has armed that name in
``settings.CRASH_POINTS``; in every other profile it does nothing and costs nothing."""

from __future__ import annotations

from django.conf import settings


class SimulatedCrash(BaseException):
    """Like a killed process: not an Exception, so no ``except Exception`` swallows it."""


def crash_point(name: str) -> None:
    if getattr(settings, "PROFILE", "") == "test" and name in getattr(settings, "CRASH_POINTS", ()):
        raise SimulatedCrash(name)
