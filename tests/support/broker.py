"""Reads what was really sent to the Celery broker (Redis) in tests: no mocks, the
messages themselves."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from django.conf import settings

QUEUES = ("default", "mint")


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def broker_messages(queue: str = "default") -> list[tuple[str, list]]:
    """(task name, args) of the messages waiting in ``queue``, oldest first."""
    found = []
    for raw in reversed(_client().lrange(queue, 0, -1)):  # kombu LPUSHes, workers BRPOP
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], body[0]))
    return found


def broker_task_names(queue: str = "default") -> list[str]:
    return [name for name, _args in broker_messages(queue)]


@pytest.fixture
def broker():
    """An empty broker for the test; yields the reader."""
    client = _client()
    client.delete(*QUEUES)
    yield broker_messages
    client.delete(*QUEUES)
