"""Structured logs and error reporting (issue 16 point 3): LOG_FORMAT=json writes one JSON
object per line carrying the request id, the task id and the deposit id where known, with the
stable message text unchanged; phone numbers and secrets are redacted in every format; with
SENTRY_DSN set, a task's exception reaches Sentry scrubbed of personal data."""

from __future__ import annotations

import copy
import gzip
import io
import json
import logging
import logging.config
import threading
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from celery import current_app
from django.conf import settings
from django_guid import set_guid

from core.logging import phones_redact, sentry_init

DEPOSIT = "3f2b8c1e-9a4d-4e5f-8b6a-0c1d2e3f4a5b"


@pytest.fixture
def json_log():
    """The project's LOGGING with LOG_FORMAT=json, writing to a buffer; restored after."""
    stream = io.StringIO()
    config = copy.deepcopy(settings.LOGGING)
    config["handlers"]["console"]["formatter"] = "json"
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    yield stream
    logging.config.dictConfig(settings.LOGGING)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_json_line_carries_the_request_id_and_the_deposit_and_keeps_the_message(json_log):
    set_guid("a" * 32)
    try:
        logging.getLogger("minting").warning("Daily cap reached deposit=%s", DEPOSIT)
    finally:
        set_guid(None)
    (line,) = _lines(json_log)
    assert line["message"] == f"Daily cap reached deposit={DEPOSIT}"
    assert line["request_id"] == "a" * 32
    assert line["deposit_id"] == DEPOSIT
    assert line["level"] == "WARNING" and line["logger"] == "minting"
    assert line["task_id"] is None and "time" in line


def test_a_json_line_logged_inside_a_task_carries_its_task_id(json_log):
    @current_app.task(name="tests.core.log_in_task")
    def log_in_task():
        logging.getLogger("worker").info("inside the task")

    result = log_in_task.apply()
    (line,) = [x for x in _lines(json_log) if x["message"] == "inside the task"]
    assert line["task_id"] == result.id


def test_an_exception_is_one_json_object_with_its_traceback(json_log):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("worker").exception("Worker error: task=x RuntimeError: boom")
    (line,) = _lines(json_log)
    assert line["message"] == "Worker error: task=x RuntimeError: boom"
    assert "Traceback" in line["exc_info"]


@pytest.mark.django_db
def test_a_request_answers_with_its_request_id(client):
    given = uuid.uuid4().hex
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)
    assert response["X-Request-ID"] == given
    made = client.get("/healthz")["X-Request-ID"]
    assert made and made != given


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("payer +255712345678 paid", "payer +2557*****678 paid"),
        ("payer 255612345678", "payer 2556*****678"),
        ("buyer_phone=0712345678,", "buyer_phone=07*****678,"),
        ("tx 0xab0712345678cd stays", "tx 0xab0712345678cd stays"),
        ("amount 1712345678 stays", "amount 1712345678 stays"),
        (f"deposit={DEPOSIT}", f"deposit={DEPOSIT}"),
    ],
)
def test_phone_numbers_are_masked_and_nothing_else(text, shown):
    assert phones_redact(text) == shown


def test_a_phone_number_never_reaches_a_log_line(json_log):
    logging.getLogger("deposits").info("ZenoPay create for 0754321987 failed")
    (line,) = _lines(json_log)
    assert "0754321987" not in json.dumps(line)
    assert line["message"] == "ZenoPay create for 07*****987 failed"


class _Capture(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 - the http.server interface
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        type(self).bodies.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def sentry_server():
    _Capture.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://publickey0123@127.0.0.1:{server.server_port}/1"
    server.shutdown()
    sentry_sdk.init(dsn=None)  # later tests send nothing


def test_a_task_exception_reaches_sentry_scrubbed(sentry_server, settings):
    settings.ZENOPAY_API_KEY = "zenopay-secret-key-0123456789"
    sentry_init(dsn=sentry_server, environment="test")

    @current_app.task(name="tests.core.sentry_boom")
    def boom(phone: str):
        raise ValueError(f"refused for {phone} with key {settings.ZENOPAY_API_KEY}")

    boom.apply(kwargs={"phone": "+255712345678"})
    sentry_sdk.flush(timeout=5)

    sent = b"\n".join(_Capture.bodies).decode("utf-8", "replace")
    assert "ValueError" in sent and "refused for +2557*****678" in sent
    assert "+255712345678" not in sent
    assert "zenopay-secret-key-0123456789" not in sent


def test_without_a_dsn_nothing_is_initialised():
    sentry_sdk.init(dsn=None)
    sentry_init(dsn="", environment="test")
    assert sentry_sdk.get_client().transport is None


def test_a_traceback_in_a_json_line_is_redacted_too(json_log, settings):
    settings.ZENOPAY_API_KEY = "zenopay-secret-key-0123456789"
    try:
        raise RuntimeError(f"refused for 0754321987 with {settings.ZENOPAY_API_KEY}")
    except RuntimeError:
        logging.getLogger("worker").exception("Worker error: task=x")
    (line,) = _lines(json_log)
    assert "0754321987" not in line["exc_info"] and "07*****987" in line["exc_info"]
    assert "zenopay-secret-key-0123456789" not in line["exc_info"]


def test_an_extra_field_of_a_record_is_redacted_too(json_log):
    logging.getLogger("django.request").warning(
        "Not Found: /deposits/", extra={"status_code": 404, "query": "phone=0712345678"}
    )
    (line,) = _lines(json_log)
    assert line["query"] == "phone=07*****678"
    assert line["status_code"] == 404
