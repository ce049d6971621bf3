"""Every Celery task records a TaskHeartbeat; an unexpected error is logged as
``Worker error:`` (the runbook's line for "investigate immediately")."""

from __future__ import annotations

import logging

from celery import signals
from django.db import close_old_connections
from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, acquire_distributed_beat_lock, get_redis

from core.services import (
    task_heartbeat_failed,
    task_heartbeat_finished,
    task_heartbeat_started,
)

logger = logging.getLogger("worker")


# celery-redbeat takes its one-beat lock at beat_init, blocking in silence while another beat
# holds it; ours takes the same lock the same way but first says that this beat waits.
signals.beat_init.disconnect(acquire_distributed_beat_lock)


@signals.beat_init.connect
def _beat_lock_acquire(sender=None, **_kwargs) -> None:
    scheduler = sender.scheduler
    key = getattr(scheduler, "lock_key", None)
    if not key:
        return  # Celery's own scheduler (the local stack): one beat by construction
    client = get_redis(sender.app)
    lock = client.lock(key, timeout=scheduler.lock_timeout, sleep=scheduler.max_interval)
    lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)  # extend to, not by
    if not lock.acquire(blocking=False):
        logger.warning(
            "Beat lock %s is held by another beat: this beat runs no schedule and waits; it "
            "takes over when that beat stops or its lock expires (%s s without renewal)",
            key,
            scheduler.lock_timeout,
        )
        lock.acquire()
    logger.warning("Beat lock %s held by this beat: it runs the schedule", key)
    scheduler.lock = lock


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
