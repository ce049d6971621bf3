"""Every log line of the test run, written as production writes it (LOG_FORMAT=json, the same
redaction and context filters) to ``var/test-run-log.jsonl``, then scanned when the session
ends: each line must be one JSON object, and no line may hold a full Tanzanian phone number
or a secret configured for the run. A hit fails the run and names the lines (issue 16: "no
secret or full phone number appears in any line of a full test run's log").

Tests that reconfigure logging (tests/core/test_log_format.py) drop the root handler; it is
put back before every test."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from django.conf import settings

from core.logging import (
    LogContextFilter,
    RedactingJsonFormatter,
    RedactSecretsFilter,
    secret_values,
)

LOG_FILE = Path(__file__).resolve().parents[2] / "var" / "test-run-log.jsonl"
# A full number in any of its written forms, not inside a longer run of letters or digits.
FULL_PHONE = re.compile(r"(?<![\w+])(?:\+?255|0)[67]\d{8}(?!\w)")
SHOWN = 10  # offending lines printed

_state: dict = {}


def _handler() -> logging.Handler:
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(LOG_FILE, mode="w", encoding="utf-8")
    production = settings.LOGGING["formatters"]["json"]  # the format LOG_FORMAT=json writes
    handler.setFormatter(
        RedactingJsonFormatter(production["format"], rename_fields=production["rename_fields"])
    )
    handler.addFilter(RedactSecretsFilter())
    handler.addFilter(LogContextFilter())
    handler.setLevel(logging.DEBUG)
    return handler


@pytest.fixture(autouse=True)
def _log_scan_handler():
    """Attached once Django's logging is configured; re-attached after a test that ran
    dictConfig again."""
    handler = _state.get("handler")
    if handler is None:
        handler = _state["handler"] = _handler()
        _state["secrets"] = [s for s in secret_values() if len(s) >= 12]
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    yield


def problems(path: Path, secrets: list[str]) -> list[str]:
    found = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                json.loads(line)
            except ValueError:
                found.append(f"line {number} is not one JSON object: {line[:120]!r}")
                continue
            if FULL_PHONE.search(line):
                found.append(f"line {number} holds a full phone number: {line[:160]!r}")
            if any(secret in line for secret in secrets):
                found.append(f"line {number} holds a configured secret")
    return found


def pytest_sessionfinish(session, exitstatus):
    handler = _state.pop("handler", None)
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
    found = problems(LOG_FILE, _state.get("secrets", []))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(
                f"log scan: {len(found)} problem(s) in {LOG_FILE}:", red=True, bold=True
            )
            for problem in found[:SHOWN]:
                reporter.write_line(f"  {problem}", red=True)
    elif reporter:
        reporter.write_line(
            f"log scan: every line of {LOG_FILE.name} is one JSON object, with no full phone "
            f"number and no secret ({settings.PROFILE} profile)"
        )
