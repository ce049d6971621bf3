"""A ZenoPay stand-in: a small HTTP server of its own, speaking ZenoPay's API, for
`make prod-check` and `make load` (the production profile refuses the built-in sandbox).

ZenoPay's side, as deposits/zenopay.py calls it (paths end with ZENOPAY_CREATE_PATH and
ZENOPAY_STATUS_PATH, under any prefix such as /api):

- ``POST …/payments/mobile_money_tanzania`` with ``x-api-key``: records the order (a USSD
  push now waiting on the phone) and answers ``{"status": "success", "resultcode": "000", …}``;
  a wrong key is 401, a missing field 400, a repeated order id 409.
- ``GET …/payments/order-status?order_id=…`` with ``x-api-key``: ZenoPay's answer shape,
  ``data[0].payment_status`` PENDING until the switch below, then COMPLETED with a transid,
  the channel of the phone's network and the paying msisdn.

The switch (the customer's phone), not part of ZenoPay's API:

- ``POST /standin/approve`` ``{"order_id": …, "webhook": true}``: the customer enters the PIN;
  the order is COMPLETED and, unless ``"webhook": false``, ZenoPay's webhook is POSTed to the
  order's ``webhook_url`` with the ``x-api-key`` header; answers the webhook's HTTP status.
- ``POST /standin/decline`` ``{"order_id": …}``: FAILED, no webhook (as ZenoPay documents).
- ``GET /standin/orders``: every order with its state, amount, webhook URL and webhook status.

The webhook goes where ZenoPay's would, through the site's TLS-terminating proxy: with
``--deliver-to http://127.0.0.1:PORT``, a webhook URL on ``--app-url``'s host is delivered to
that address with the original ``Host``, ``X-Forwarded-Proto: https`` and
``X-Forwarded-For: <--source-ip>`` — exactly what the proxy hands gunicorn.

    python scripts/zenopay_standin.py --port 8700 --api-key KEY \\
        --app-url https://ntzs.example --deliver-to http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import secrets
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CREATE_SUFFIX = "/payments/mobile_money_tanzania"
STATUS_SUFFIX = "/payments/order-status"
CREATE_FIELDS = ("order_id", "buyer_email", "buyer_name", "buyer_phone", "amount")
LOCAL_MOBILE = re.compile(r"0[67]\d{8}")
ALNUM = string.ascii_uppercase + string.digits
CHANNELS = {
    **dict.fromkeys(("074", "075", "076"), "MPESA-TZ"),
    **dict.fromkeys(("065", "067", "071", "077"), "TIGO-TZ"),
    **dict.fromkeys(("068", "069", "078"), "AIRTEL-TZ"),
}
WEBHOOK_TIMEOUT_S = 30


class Orders:
    """The stand-in's memory: one dict of orders behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_id: dict[str, dict] = {}

    def create(self, fields: dict) -> bool:
        with self.lock:
            if fields["order_id"] in self.by_id:
                return False
            self.by_id[fields["order_id"]] = {
                **fields,
                "state": "PENDING",
                "reference": "".join(secrets.choice(string.digits) for _ in range(10)),
                "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                "transid": None,
                "channel": None,
                "msisdn": None,
                "webhook_status": None,
            }
            return True

    def decide(self, order_id: str, state: str) -> dict | None:
        """Compare-and-set PENDING → state; None when unknown or already decided."""
        with self.lock:
            order = self.by_id.get(order_id)
            if order is None or order["state"] != "PENDING":
                return None
            order["state"] = state
            if state == "COMPLETED":
                order["transid"] = "SI" + "".join(secrets.choice(ALNUM) for _ in range(10))
                order["channel"] = CHANNELS.get(order["buyer_phone"][:3], "MOBILE-TZ")
                order["msisdn"] = "255" + order["buyer_phone"][1:]
            return dict(order)

    def get(self, order_id: str) -> dict | None:
        with self.lock:
            order = self.by_id.get(order_id)
            return dict(order) if order else None

    def all(self) -> list[dict]:
        with self.lock:
            return [dict(order) for order in self.by_id.values()]

    def webhook_answered(self, order_id: str, http_status: int | None) -> None:
        with self.lock:
            self.by_id[order_id]["webhook_status"] = http_status


def _validated(payload) -> tuple[dict | None, str]:
    if not isinstance(payload, dict):
        return None, "The body must be a JSON object"
    missing = [name for name in CREATE_FIELDS if payload.get(name) in (None, "")]
    if missing:
        return None, f"Missing required field(s): {', '.join(missing)}"
    amount = payload["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return None, "amount must be a whole number of shillings above zero"
    phone = str(payload["buyer_phone"]).strip()
    if not LOCAL_MOBILE.fullmatch(phone):
        return None, "Invalid buyer_phone: use a Tanzanian mobile number in the form 07XXXXXXXX"
    webhook_url = payload.get("webhook_url") or ""
    if webhook_url and not str(webhook_url).startswith(("http://", "https://")):
        return None, "Invalid webhook_url"
    return {
        "order_id": str(payload["order_id"]).strip(),
        "buyer_email": str(payload["buyer_email"]),
        "buyer_phone": phone,
        "amount": amount,
        "webhook_url": str(webhook_url),
        "metadata": payload.get("metadata") or {},
    }, ""


class Webhooks:
    """POSTs ZenoPay's webhook, through the proxy's front door when asked to."""

    def __init__(self, *, api_key: str, app_url: str, deliver_to: str, source_ip: str):
        self.api_key = api_key
        self.app_host = urlsplit(app_url).netloc if app_url else ""
        self.deliver_to = urlsplit(deliver_to) if deliver_to else None
        self.source_ip = source_ip

    def send(self, order: dict) -> int | None:
        url = urlsplit(order["webhook_url"])
        body = json.dumps(
            {
                "order_id": order["order_id"],
                "payment_status": order["state"],
                "reference": order["reference"],
                "metadata": order["metadata"],
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "x-api-key": self.api_key,
            "Host": url.netloc,
        }
        target = url
        if self.deliver_to is not None and url.netloc == self.app_host:
            target = self.deliver_to
            headers["X-Forwarded-Proto"] = url.scheme
            headers["X-Forwarded-For"] = self.source_ip
        connection_class = (
            http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        )
        path = url.path + (f"?{url.query}" if url.query else "")
        try:
            connection = connection_class(target.netloc, timeout=WEBHOOK_TIMEOUT_S)
            connection.request("POST", path, body, headers)
            answer = connection.getresponse()
            answer.read()
            connection.close()
            return answer.status
        except OSError as exc:
            log(f"webhook order={order['order_id']} did not get through ({type(exc).__name__})")
            return None


def log(message: str) -> None:
    print(f"[zenopay-standin] {message}", file=sys.stderr, flush=True)


def make_handler(orders: Orders, webhooks: Webhooks, api_key: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ZenoPayStandIn/1"

        def log_message(self, *args):  # quiet; the actions are logged by log()
            pass

        def _answer(self, status: int, body: dict | list) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"null")
            except ValueError:
                return None

        def _key_ok(self) -> bool:
            if self.headers.get("x-api-key") == api_key:
                return True
            self._answer(
                401, {"status": "error", "resultcode": "401", "message": "Invalid API key"}
            )
            return False

        def do_POST(self):
            path = urlsplit(self.path).path
            payload = self._body()
            if path.endswith(CREATE_SUFFIX):
                if not self._key_ok():
                    return
                fields, problem = _validated(payload)
                if fields is None:
                    self._answer(400, {"status": "error", "resultcode": "400", "message": problem})
                    return
                if not orders.create(fields):
                    self._answer(
                        409,
                        {
                            "status": "error",
                            "resultcode": "409",
                            "message": f"Duplicate order_id {fields['order_id']}",
                        },
                    )
                    return
                log(f"create order={fields['order_id']} amount={fields['amount']} accepted")
                self._answer(
                    200,
                    {
                        "status": "success",
                        "resultcode": "000",
                        "message": "Request in progress. You will receive a callback shortly",
                        "order_id": fields["order_id"],
                    },
                )
            elif path in ("/standin/approve", "/standin/decline"):
                order_id = str((payload or {}).get("order_id") or "")
                state = "COMPLETED" if path.endswith("approve") else "FAILED"
                order = orders.decide(order_id, state)
                if order is None:
                    self._answer(409, {"error": f"no pending order {order_id!r}"})
                    return
                webhook_status = None
                if state == "COMPLETED" and (payload or {}).get("webhook", True):
                    if order["webhook_url"]:
                        webhook_status = webhooks.send(order)
                        orders.webhook_answered(order_id, webhook_status)
                log(f"order={order_id} {state} webhook answered {webhook_status}")
                self._answer(
                    200, {"order_id": order_id, "state": state, "webhook_status": webhook_status}
                )
            else:
                self._answer(404, {"status": "error", "resultcode": "404", "message": "Not found"})

        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path.endswith(STATUS_SUFFIX):
                if not self._key_ok():
                    return
                order_id = (parse_qs(parts.query).get("order_id") or [""])[0]
                order = orders.get(order_id)
                if order is None:
                    self._answer(
                        200,
                        {
                            "result": "FAIL",
                            "resultcode": "404",
                            "message": "Order not found",
                            "reference": None,
                            "data": [],
                        },
                    )
                    return
                self._answer(
                    200,
                    {
                        "reference": order["reference"],
                        "resultcode": "000",
                        "result": "SUCCESS",
                        "message": "Order fetch successful",
                        "data": [
                            {
                                "order_id": order["order_id"],
                                "creation_date": order["created"],
                                "amount": str(order["amount"]),
                                "payment_status": order["state"],
                                "transid": order["transid"],
                                "channel": order["channel"],
                                "reference": order["reference"],
                                "msisdn": order["msisdn"],
                            }
                        ],
                    },
                )
            elif parts.path == "/standin/orders":
                self._answer(200, orders.all())
            elif parts.path == "/standin/health":
                self._answer(200, {"status": "ok"})
            else:
                self._answer(404, {"status": "error", "resultcode": "404", "message": "Not found"})

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the listen backlog: a burst of creates must not be refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", required=True, help="the key ZenoPay issued (x-api-key)")
    parser.add_argument("--app-url", default="", help="the site's public URL (APP_URL)")
    parser.add_argument("--deliver-to", default="", help="where the proxy in front forwards to")
    parser.add_argument("--source-ip", default="196.41.32.10", help="ZenoPay's address")
    args = parser.parse_args(argv)
    orders = Orders()
    webhooks = Webhooks(
        api_key=args.api_key,
        app_url=args.app_url,
        deliver_to=args.deliver_to,
        source_ip=args.source_ip,
    )
    server = Server((args.host, args.port), make_handler(orders, webhooks, args.api_key))
    log(f"listening on http://{args.host}:{args.port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
