"""A real Celery worker with pool processes (prefork, two of them), its output sent to a file
as ``make dev`` users and process managers do: every task's own log line and Celery's result
line reach the stream, also after a task enqueued another one (issue 9: a pool process used
to go silent from then on, so operators lost ``Mint confirmed deposit=`` and every later line)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import current_app
from django.db import connection

REPO = Path(__file__).resolve().parents[2]
TASKS = 8


def _database_url_of_test_db() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _wait_for_lines(log: Path, worker: subprocess.Popen, done, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline and worker.poll() is None:
        text = log.read_text(errors="replace")
        if done(text):
            break
        time.sleep(0.3)
    return text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_writing_to_a_file_logs_every_tasks_lines(tmp_path, broker):
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url_of_test_db(),
    }
    env.pop("PYTHONUNBUFFERED", None)  # block-buffered output, as under a process manager
    with open(log, "w") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--include",
                "tests.support.worker_tasks",
                "-Q",
                "default",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for number in range(TASKS):
            current_app.send_task("tests.worker_log_line", args=[number])

        def done(text: str) -> bool:
            return len(re.findall(r"Task core\.tasks\.ping\[\S+\] succeeded", text)) >= TASKS

        text = _wait_for_lines(log, worker, done)
    finally:
        worker.terminate()  # SIGTERM: a warm shutdown
        worker.wait(timeout=30)
    text = log.read_text(errors="replace")
    own = sorted(int(n) for n in re.findall(r"worker log line number=(\d+)", text))
    assert own == list(range(TASKS)), text[-3000:]
    results = re.findall(r"Task tests\.worker_log_line\[\S+\] succeeded in \S+: (\d+)", text)
    assert sorted(map(int, results)) == list(range(TASKS))
    # The pings each task enqueued ran in the same pool processes and were logged too.
    assert len(re.findall(r"Task core\.tasks\.ping\[\S+\] succeeded", text)) == TASKS
    assert "Shutting down" in text  # the main process's own lines too
