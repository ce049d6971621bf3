"""``make load``: a benchmark of the production profile (not a test), on the stack of
``make prod-check`` (scripts/prod_check.py: gunicorn, a Celery worker on default+mint, beat,
PostgreSQL, Redis, anvil with 1-second blocks, the ZenoPay stand-in).

The load, all through the proxy's front door (Host, X-Forwarded-Proto, X-Forwarded-For):

1. LOAD_DEPOSITS (200) deposit creations at once through ``POST /api/v1/deposits`` by
   LOAD_CUSTOMERS (50) customers, each with its own API token;
2. once the worker has asked the stand-in for every payment, every order is approved there
   (the switch, webhooks held back) and LOAD_WEBHOOKS (500) ZenoPay webhook calls are sent at
   once (every order gets two or three: ZenoPay repeats itself), each with the ``x-api-key``
   and the order's ``t`` token of its webhook URL;
3. meanwhile LOAD_POLLERS (200) clients poll the customer's status page of one deposit each
   (``/deposits/<id>/status/``, the owner's session), at the interval the page asks for,
   until it shows the deposit minted.

It reports p50/p99 per endpoint, errors (any answer but the expected one, or no answer),
lost notifications (a webhook answered 200 but not stored as a PaymentNotification, or a
poller that never saw its deposit minted), and checks afterwards that every deposit was
minted exactly once on chain (one DepositMinted per deposit, one mint Transfer each,
totalSupply equal to the books). Exits 1 when any of those is not zero.

The client is aiohttp (asyncio): one process holds hundreds of connections open at once
with exact per-request timings, and it is already in the lock (web3 uses it). Locust drives
a steady user rate from gevent workers with its own UI; the bursts here ("500 at once") and
the invariants checked after them are plain code.

Throttles raised for the run, through the environment (said in the output):
``ZENOPAY_WEBHOOK_MAX_PER_MIN`` (600 per client address: all 500 calls come from ZenoPay's one
address) and ``DEPOSIT_CREATE_MAX_PER_10_MIN`` (10 per customer). Customers are seeded in
one step with approved KYC, a verified wallet, a token and a session (not measured).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import time
import traceback
import uuid
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from prod_check import (  # noqa: E402
    APP_URL,
    HOST,
    CheckFailed,
    ProdStack,
    check_exactly_once_rows,
    wait_for,
)

CUSTOMERS = int(os.environ.get("LOAD_CUSTOMERS", "50"))
DEPOSITS = int(os.environ.get("LOAD_DEPOSITS", "200"))
WEBHOOKS = int(os.environ.get("LOAD_WEBHOOKS", "500"))
POLLERS = int(os.environ.get("LOAD_POLLERS", "200"))
MINT_TIMEOUT_S = int(os.environ.get("LOAD_MINT_TIMEOUT_S", "900"))
ZENOPAY_IP = "196.41.32.10"
RAISED = {
    "ZENOPAY_WEBHOOK_MAX_PER_MIN": "100000",
    "DEPOSIT_CREATE_MAX_PER_10_MIN": "1000",
}
LOG_DIR = REPO / "var" / "load"
_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[load {time.monotonic() - _STARTED:5.0f} s] {message}", flush=True)


SEED = """
import json, secrets
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from eth_account import Account
from rest_framework.authtoken.models import Token
from accounts.models import KycCase, Wallet
from core.clock import now
from deposits.models import Bank

Bank.objects.get_or_create(name="Settlement bank", defaults={"is_zenopay_settlement": True,
    "account_name": "nTZS Ltd", "account_number": "0150000000001"})
people = []
for index in range(COUNT):
    user = get_user_model().objects.create_user(email=f"load{index}@load.example", password=None)
    KycCase.objects.create(user=user, national_id=f"{index + 1:020d}", full_name=f"Load {index}",
                           status="approved")
    wallet = Wallet.objects.create(user=user, address=Account.create().address,
                                   verified_at=now(), verification_method="manual")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    people.append({"email": user.email, "token": Token.objects.create(user=user).key,
                   "session": session.session_key, "wallet_id": str(wallet.pk),
                   "phone": f"0754{index:06d}"})
print(json.dumps(people))
"""


class Timings:
    def __init__(self):
        self.by_endpoint: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    def record(self, endpoint: str, seconds: float, error: str = "") -> None:
        self.by_endpoint.setdefault(endpoint, []).append(seconds)
        if error:
            self.errors.setdefault(endpoint, []).append(error)

    def table(self) -> str:
        lines = [
            f"{'endpoint':<34} {'calls':>6} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        ]
        for endpoint, values in self.by_endpoint.items():
            ordered = sorted(values)
            p99 = ordered[max(0, int(len(ordered) * 0.99 + 0.999999) - 1)]
            lines.append(
                f"{endpoint:<34} {len(values):>6} {len(self.errors.get(endpoint, [])):>6} "
                f"{statistics.median(ordered) * 1000:>8.0f} {p99 * 1000:>8.0f} "
                f"{ordered[-1] * 1000:>8.0f}"
            )
        return "\n".join(lines)

    def error_count(self) -> int:
        return sum(len(errors) for errors in self.errors.values())


def front_door(client_ip: str, extra: dict | None = None) -> dict:
    return {
        "Host": HOST,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": client_ip,
        **(extra or {}),
    }


async def timed(
    http, timings: Timings, endpoint: str, method: str, url: str, *, expect: int, **kwargs
) -> tuple[int, str]:
    started = time.perf_counter()
    try:
        async with http.request(method, url, allow_redirects=False, **kwargs) as answer:
            body = await answer.text()
            status = answer.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        timings.record(endpoint, time.perf_counter() - started, f"{type(exc).__name__}")
        return 0, ""
    error = "" if status == expect else f"HTTP {status}: {body[:200]}"
    timings.record(endpoint, time.perf_counter() - started, error)
    return status, body


async def create_deposits(stack, people, timings) -> list[dict]:
    async def one(http, index):
        person = people[index % len(people)]
        status, body = await timed(
            http,
            timings,
            "POST /api/v1/deposits",
            "POST",
            f"{stack.web_url}/api/v1/deposits",
            expect=201,
            json={
                "amount_tzs": 1_000 + (index * 37) % 7_000,
                "payment_provider": "zenopay",
                "wallet_id": person["wallet_id"],
                "buyer_phone": person["phone"],
            },
            headers=front_door(
                f"41.59.{index % 250}.{index // 250 + 1}",
                {"Authorization": f"Token {person['token']}", "Idempotency-Key": f"load-{index}"},
            ),
        )
        return {**json.loads(body), "owner": person} if status == 201 else None

    async with _session() as http:
        made = await asyncio.gather(*(one(http, index) for index in range(DEPOSITS)))
    return [deposit for deposit in made if deposit]


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=120),
    )


async def poll_status(stack, deposit, timings, seen: dict, stop: asyncio.Event) -> None:
    """One customer's open page: fetch the status fragment at the interval it asks for."""
    path = f"/deposits/{deposit['id']}/status/"
    headers = front_door("41.60.1.1", {"Cookie": f"sessionid={deposit['owner']['session']}"})
    async with _session() as http:
        while not stop.is_set():
            status, body = await timed(
                http,
                timings,
                "GET /deposits/<id>/status/",
                "GET",
                stack.web_url + path,
                expect=200,
                headers=headers,
            )
            stage = re.search(r'data-stage="([^"]*)"', body)
            if stage and stage.group(1) == "minted":
                seen[deposit["id"]] = time.monotonic()
                return
            wait = re.search(r'data-poll-seconds="(\d+)"', body)
            await asyncio.sleep(int(wait.group(1)) if wait else 2)


async def fire_webhooks(stack, orders: list[dict], timings) -> int:
    """WEBHOOKS calls at once over the orders (each gets two or three); the number answered
    200 "received"."""

    async def one(http, index):
        order = orders[index % len(orders)]
        webhook = order["webhook_url"]
        status, body = await timed(
            http,
            timings,
            "POST /api/webhooks/zenopay",
            "POST",
            stack.web_url + webhook[len(APP_URL) :],
            expect=200,
            json={
                "order_id": order["order_id"],
                "payment_status": "COMPLETED",
                "reference": order["reference"],
                "metadata": {},
            },
            headers=front_door(ZENOPAY_IP, {"x-api-key": stack.api_key}),
        )
        return status == 200 and '"received"' in body

    async with _session() as http:
        answers = await asyncio.gather(*(one(http, index) for index in range(WEBHOOKS)))
    return sum(answers)


async def run_load(stack, people, timings) -> dict:
    phase = time.monotonic()
    deposits = await create_deposits(stack, people, timings)
    took = time.monotonic() - phase
    say(f"{len(deposits)} of {DEPOSITS} deposits created at once in {took:.1f} s")
    if len(deposits) != DEPOSITS:
        raise CheckFailed(f"{DEPOSITS - len(deposits)} deposit creations failed")
    ids = [deposit["id"] for deposit in deposits]
    orders = wait_for(
        "the worker to ask the stand-in for every payment",
        lambda: (lambda o: o if set(ids) <= o.keys() else None)(stack.standin_orders()),
        timeout=300,
        interval=1,
    )
    say(f"the worker asked the stand-in for all {len(ids)} payments")
    seen: dict[str, float] = {}
    stop = asyncio.Event()
    pollers = [
        asyncio.create_task(poll_status(stack, deposits[i % len(deposits)], timings, seen, stop))
        for i in range(POLLERS)
    ]
    await asyncio.sleep(3)
    loop = asyncio.get_running_loop()
    approvals = [
        loop.run_in_executor(None, lambda i=i: stack.standin_approve(i, webhook=False)) for i in ids
    ]
    await asyncio.gather(*approvals)
    say(f"all {len(ids)} payments approved at the stand-in (webhooks held back)")
    fired = time.monotonic()
    received = await fire_webhooks(stack, [orders[i] for i in ids], timings)
    say(
        f"{WEBHOOKS} webhooks sent at once in {time.monotonic() - fired:.1f} s: {received} received"
    )

    def all_minted():
        stack.alive()
        rows = dict(
            stack.sql(
                "SELECT status, count(*) FROM deposits_depositrequest WHERE id = ANY(%s) "
                "GROUP BY status",
                ([uuid.UUID(i) for i in ids],),
            )
        )
        return rows if rows.get("minted") == len(ids) else None

    await loop.run_in_executor(
        None, lambda: wait_for("every deposit to be minted", all_minted, MINT_TIMEOUT_S, 2)
    )
    minted_after = time.monotonic() - fired
    say(f"all {len(ids)} deposits minted {minted_after:.1f} s after the webhooks")
    try:
        await asyncio.wait_for(asyncio.gather(*pollers), timeout=120)
    except TimeoutError:
        stop.set()
    return {"ids": ids, "received": received, "seen": seen, "minted_after": minted_after}


def main() -> int:
    say(
        "throttles raised for this run through the environment: "
        + ", ".join(f"{name}={value}" for name, value in RAISED.items())
    )
    stack = ProdStack(extra_env=RAISED, log_dir=LOG_DIR)
    timings = Timings()
    try:
        stack.start()
        people = json.loads(stack.shell(SEED.replace("COUNT", str(CUSTOMERS))).splitlines()[-1])
        say(f"{len(people)} customers seeded (approved KYC, verified wallet, token, session)")
        result = asyncio.run(run_load(stack, people, timings))
        ids = result["ids"]
        stored = stack.sql(
            "SELECT count(*) FROM deposits_paymentnotification WHERE kind = 'webhook' "
            "AND http_status = 200 AND deposit_id = ANY(%s)",
            ([uuid.UUID(i) for i in ids],),
        )[0][0]
        books = stack.sql(
            "SELECT id, amount_tzs FROM deposits_depositrequest WHERE status = 'minted'",
        )
        exact = check_exactly_once_rows(stack, {str(i): a for i, a in books}, ids)
        lost_webhooks = result["received"] - stored
        lost_pages = len(set(ids[: min(POLLERS, len(ids))]) - result["seen"].keys())
        print(timings.table(), flush=True)
        say(
            f"webhooks: {WEBHOOKS} sent, {result['received']} answered received, {stored} stored "
            f"as notifications: {max(lost_webhooks, 0)} lost"
        )
        say(
            f"status pages: {len(result['seen'])} of {min(POLLERS, len(ids))} polled deposits "
            f"seen minted by their page: {lost_pages} lost"
        )
        say(exact)
        say(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; gunicorn "
            f"{stack.env.get('WEB_CONCURRENCY') or (os.cpu_count() or 1) * 2 + 1} sync workers "
            f"(gunicorn.conf.py), one Celery worker of {os.cpu_count()} processes, 1-second blocks"
        )
        failures = timings.error_count() + max(lost_webhooks, 0) + lost_pages
        if result["received"] != WEBHOOKS:
            failures += WEBHOOKS - result["received"]
        if failures:
            for endpoint, errors in timings.errors.items():
                say(f"errors on {endpoint}: {errors[:3]}")
            say(f"FAILED: {failures} errors or lost notifications")
            return 1
        say("OK: 0 errors, 0 lost notifications, every deposit minted exactly once")
        return 0
    except CheckFailed as exc:
        say(f"FAILED: {exc} (logs: {LOG_DIR})")
        return 1
    except Exception as exc:  # a service that would not start, a chain error: one sentence
        traceback.print_exc()
        say(f"FAILED: {type(exc).__name__}: {exc} (logs: {LOG_DIR})")
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
