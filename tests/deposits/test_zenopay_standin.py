"""The ZenoPay stand-in of `make prod-check` (scripts/zenopay_standin.py) speaks the API our
client (deposits/zenopay.py) calls: a real stand-in process, the real client, over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from deposits.zenopay import ZenoPayRefused, zenopay_create, zenopay_order_status
from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]
API_KEY = "standin-test-key"


class _Receiver:
    """Plays the TLS proxy's back side: records the webhooks the stand-in delivers."""

    def __init__(self):
        self.calls: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def standin(settings):
    receiver = _Receiver()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "zenopay_standin.py"),
            "--port",
            str(port),
            "--api-key",
            API_KEY,
            "--app-url",
            "https://ntzs.example",
            "--deliver-to",
            receiver.url,
        ],
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/standin/health", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    settings.ZENOPAY_BASE_URL = f"{base}/api"
    settings.ZENOPAY_API_KEY = API_KEY
    yield base, receiver
    proc.terminate()
    proc.wait(timeout=10)
    receiver.server.shutdown()


def _create(order_id: str):
    return zenopay_create(
        order_id=order_id,
        buyer_email="amina@example.com",
        buyer_name="Amina",
        buyer_phone="0754123456",
        amount_tzs=5_000,
        webhook_url=f"https://ntzs.example/api/webhooks/zenopay?t=tok-{order_id}",
    )


def test_standin_answers_create_and_order_status_as_the_client_reads_them(standin):
    base, _receiver = standin
    accepted = _create("order-1")
    assert accepted.order_id == "order-1" and accepted.resultcode == "000"

    pending = zenopay_order_status(order_id="order-1")
    assert pending.known and pending.payment_status == "PENDING"
    assert pending.amount_tzs == 5_000

    requests.post(f"{base}/standin/approve", json={"order_id": "order-1", "webhook": False})
    paid = zenopay_order_status(order_id="order-1")
    assert paid.known and paid.payment_status == "COMPLETED"
    assert paid.transid and paid.msisdn == "255754123456" and paid.channel == "MPESA-TZ"
    assert paid.unreadable == ""


def test_standin_refuses_a_wrong_key_and_says_it_holds_no_unknown_order(standin, settings):
    _create("order-2")
    unknown = zenopay_order_status(order_id="never-created")
    assert not unknown.known and unknown.no_data
    settings.ZENOPAY_API_KEY = "wrong"
    with pytest.raises(ZenoPayRefused) as refused:
        _create("order-3")
    assert refused.value.http_status == 401


def test_approval_delivers_the_webhook_through_the_proxy_with_the_api_key(standin):
    base, receiver = standin
    _create("order-4")
    answer = requests.post(f"{base}/standin/approve", json={"order_id": "order-4"}).json()
    assert answer["webhook_status"] == 200
    [call] = receiver.calls
    assert call["path"] == "/api/webhooks/zenopay?t=tok-order-4"
    assert call["headers"]["x-api-key"] == API_KEY
    assert call["headers"]["Host"] == "ntzs.example"
    assert call["headers"]["X-Forwarded-Proto"] == "https"
    assert call["body"]["order_id"] == "order-4"
    assert call["body"]["payment_status"] == "COMPLETED"
    again = requests.post(f"{base}/standin/approve", json={"order_id": "order-4"})
    assert again.status_code == 409
