"""One beat at a time (issue 16 point 8): two real `celery beat` processes on the same Redis.
The second says it runs no schedule and sends nothing; after the first is killed (no clean
release), the second takes the lock within its TTL and starts sending the schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]
LOCK_TTL_S = 10
SENT = "Sending due task"


def _beat(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    db = connection.settings_dict
    log = tmp_path / f"{name}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "BEAT_LOCK_TTL_S": str(LOCK_TTL_S),
        "BEAT_PROCESS_MINT_JOBS_S": "1",  # something is due every second
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(tmp_path / f"{name}-schedule"),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


def _wait(log: Path, process: subprocess.Popen, done, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if done(text) or process.poll() is not None:
            break
        time.sleep(0.3)
    return text


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_second_beat_runs_no_schedule_until_the_first_dies(tmp_path, broker):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("ntzs:beat::lock")
    first, first_log = _beat(tmp_path, "first")
    second = None
    try:
        text = _wait(first_log, first, lambda t: SENT in t, timeout=60)
        assert "held by this beat" in text, text
        assert SENT in text, text

        second, second_log = _beat(tmp_path, "second")
        text = _wait(second_log, second, lambda t: "held by another beat" in t, timeout=60)
        assert "this beat runs no schedule" in text, text
        time.sleep(3)  # several of the first beat's ticks
        assert SENT not in second_log.read_text(), second_log.read_text()

        killed_at = time.monotonic()
        first.send_signal(signal.SIGKILL)  # no clean release: the lock must expire
        first.wait(timeout=10)
        text = _wait(second_log, second, lambda t: SENT in t, timeout=LOCK_TTL_S + 30)
        took_over_after = time.monotonic() - killed_at
        assert SENT in text, text
        assert took_over_after <= LOCK_TTL_S + 10, took_over_after
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
        client.delete("ntzs:beat::lock")
