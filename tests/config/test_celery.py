"""Celery: configuration, the beat schedule held against the code, and a real round trip
through Redis to a worker process that writes its heartbeat to the test database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery_app import app
from core.models import TaskHeartbeat

REPO = Path(__file__).resolve().parents[2]


def _periodic_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name, task in app.tasks.items() if getattr(task, "periodic", False)}


def test_every_periodic_task_in_the_code_is_scheduled_with_an_expiry():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert _periodic_tasks() == set(schedule)
    assert _periodic_tasks()  # the discovery found the tasks, it is not comparing two blanks
    for name, entry in schedule.items():
        assert entry["task"] == name
        assert 0 < entry["options"]["expires"] <= entry["schedule"]


def test_messages_are_json_only_acknowledged_late_and_fetched_one_at_a_time():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_url.startswith("redis://")
    assert app.amqp.router.route({}, "minting.tasks.check_minter")["queue"].name == "mint"
    assert app.amqp.router.route({}, "core.tasks.ping")["queue"].name == "default"


def _database_url_of_test_db() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_task_round_trips_through_redis_to_a_real_worker_and_records_its_heartbeat():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url_of_test_db(),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        app.send_task("core.tasks.ping")
        deadline = time.monotonic() + 60
        beat = None
        while time.monotonic() < deadline:
            beat = TaskHeartbeat.objects.filter(
                task_name="core.tasks.ping", last_finished__isnull=False
            ).first()
            if beat or worker.poll() is not None:
                break
            time.sleep(0.2)
        assert beat is not None, "the worker never recorded the ping heartbeat"
        assert beat.last_started <= beat.last_finished
    finally:
        worker.terminate()  # SIGTERM: a warm shutdown
        output = worker.communicate(timeout=30)[0]
    assert "Worker error:" not in output
    assert "Mint worker started" in output  # with the minter, chain id and contract
    assert "Shutting down" in output
