"""Tasks only the logging test's worker loads (``celery worker --include``): each writes a log
line of its own and enqueues a real task by name, the step after which a pool process used to
go silent (issue 9: ``task_enqueue_on_commit`` re-ran ``django.setup()``, which re-applied
LOGGING with the console handler bound to Celery's stdout proxy)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from core.services import task_enqueue_on_commit

logger = logging.getLogger("tests.worker_tasks")


@shared_task(name="tests.worker_log_line")
def worker_log_line(number: int) -> int:
    with transaction.atomic():
        task_enqueue_on_commit("core.tasks.ping")
    logger.info("worker log line number=%s", number)
    return number
