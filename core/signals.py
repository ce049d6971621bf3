"""Every Celery task records a TaskHeartbeat; an unexpected error is logged as
``Worker error:`` (the runbook's line for "investigate immediately")."""

from __future__ import annotations

import logging

from celery import signals
from django.db import close_old_connections

from core.services import (
    task_heartbeat_failed,
    task_heartbeat_finished,
    task_heartbeat_started,
)

logger = logging.getLogger("worker")


@signals.task_prerun.connect
def _task_started(sender=None, **_kwargs) -> None:
    close_old_connections()
    task_heartbeat_started(task_name=sender.name)


@signals.task_postrun.connect
def _task_finished(sender=None, state=None, **_kwargs) -> None:
    if state == "SUCCESS":
        task_heartbeat_finished(task_name=sender.name)
    close_old_connections()


@signals.task_failure.connect
def _task_failed(sender=None, exception=None, **_kwargs) -> None:
    logger.error("Worker error: task=%s %s: %s", sender.name, type(exception).__name__, exception)
    task_heartbeat_failed(task_name=sender.name, error=f"{type(exception).__name__}: {exception}")
