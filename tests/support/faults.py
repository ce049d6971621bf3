"""The fault suite's stack and invariants (issue 16 point 5; tests/faults/).

``FaultServers`` are a PostgreSQL and a Redis of the fault suite's own, never the ones the rest
of the suite shares (tests/support/services.py starts those): each can be crashed and started
again on the same port and data directory. The schema is migrated once into a template
database; every scenario gets a fresh copy of it (``CREATE DATABASE … TEMPLATE``).

``FaultStack`` runs one scenario with real processes, all on the test profile pointed by
environment at those servers, at a fresh NTZS deployment on the session's anvil, and at a
ZenoPay stand-in (scripts/zenopay_standin.py, its own HTTP server; the built-in sandbox is
off): gunicorn (web), a Celery worker on ``default`` and ``mint`` (the Procfile's command)
and beat. Deposits are created by a ``manage.py shell`` process (``fault_seed_deposits``), so
the worker hears of them through the broker exactly as from the web.

``WebhookSender`` plays ZenoPay's side: it approves each order at the stand-in (the customer's
PIN) and delivers ZenoPay's webhook to gunicorn itself, retrying a refused or failed delivery
as ZenoPay does, and keeps every attempt's answer, so no notification can be lost unseen.

``fault_invariants_assert`` is what must hold after every scenario: each paid deposit minted,
exactly one mint ``Transfer`` (and ``DepositMinted``) log per deposit read with eth_getLogs,
``totalSupply`` equal to the books, nothing stuck, every delivered webhook stored.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
import requests

from accounts.models import KycCase, User, Wallet
from core.clock import now
from core.money import tzs_to_units
from deposits.models import Bank
from deposits.services.intake import DepositInput, deposit_create
from minting.contract_artifact import deposit_ref
from tests.factories import KycCaseFactory, WalletFactory, customer
from tests.support.anvil import AnvilNode
from tests.support.chain_fixtures import NtzsDeployment, deploy_ntzs
from tests.support.services import (
    ServiceStartError,
    _as_postgres_user,
    _pg_bindir,
    _wait_for_port,
    free_port,
)
from tests.support.tcp_proxy import TcpProxy

REPO = Path(__file__).resolve().parents[2]
ZERO = "0x" + "00" * 20
TEMPLATE_DB = "ntzs_fault_template"
# Statuses a paid deposit must have left once the recovery window is over.
NOT_DONE = ("submitted", "mint_pending", "mint_processing", "mint_failed")
API_KEY = "fault-suite-zenopay-key"


class FaultSuiteError(AssertionError):
    pass


def wait_until(what: str, predicate, *, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise FaultSuiteError(f"timed out after {timeout:g} s waiting for {what}")


def _port_closed(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                time.sleep(0.05)
        except OSError:
            return
    raise FaultSuiteError(f"port {port} still answers {timeout:g} s after the crash")


# --- The suite's own PostgreSQL and Redis --------------------------------------------------------


class FaultPostgres:
    """A throwaway cluster whose server can be crashed (immediate shutdown: no checkpoint, crash
    recovery at the next start) and started again on the same port and data directory."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.data = workdir / "pg"
        self.data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")
            shutil.chown(self.data, "postgres")
        self.log = workdir / "postgres.log"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        init = subprocess.run(
            _as_postgres_user(
                [str(_pg_bindir() / "initdb"), "-D", str(self.data), "-U", "postgres"]
                + ["-A", "trust", "-E", "UTF8", "--no-sync"]
            ),
            capture_output=True,
            text=True,
        )
        if init.returncode != 0:
            raise ServiceStartError(f"initdb failed: {init.stderr.strip()}")
        self.start()

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                _as_postgres_user(
                    [str(_pg_bindir() / "postgres"), "-D", str(self.data), "-p", str(self.port)]
                    + ["-k", str(self.workdir), "-c", "listen_addresses=127.0.0.1"]
                    + ["-c", "fsync=off", "-c", "full_page_writes=off"]
                    + ["-c", "max_connections=200"]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_for_port(self.port, self.proc, "the fault suite's PostgreSQL", self.log)
        # Listening is not accepting: after a crash the server is in recovery for a moment.
        wait_until("PostgreSQL to accept connections", self._accepts, timeout=30)

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def crash(self) -> None:
        """SIGQUIT to the postmaster: PostgreSQL's immediate shutdown, every connection cut
        and no checkpoint, as a crashed server or a failover leaves things."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
        self.proc.wait(timeout=30)
        _port_closed(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def execute(self, statement: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            db.execute(statement)


class FaultRedis:
    """A throwaway Redis without persistence: a crash and restart loses every queued message
    and every cached value, the worst a broker and cache restart can do."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.log = workdir / "redis.log"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_for_port(self.port, self.proc, "the fault suite's Redis", self.log)

    def crash(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        _port_closed(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushall()


@dataclass
class FaultServers:
    workdir: Path
    postgres: FaultPostgres
    redis: FaultRedis

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def fault_servers_start() -> FaultServers:
    """The suite's own PostgreSQL and Redis, with the schema migrated into the template."""
    workdir = Path(tempfile.mkdtemp(prefix="ntzs-fault-servers-"))
    postgres = FaultPostgres(workdir)
    redis_server = FaultRedis(workdir)
    servers = FaultServers(workdir=workdir, postgres=postgres, redis=redis_server)
    try:
        postgres.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": postgres.url(TEMPLATE_DB),
            "REDIS_URL": redis_server.url,
        }
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise ServiceStartError(f"migrate failed: {result.stderr[-3000:]}")
    except BaseException:
        servers.stop()
        raise
    return servers


# --- One scenario's processes ----------------------------------------------------------------


@dataclass
class FaultStack:
    servers: FaultServers
    deployment: NtzsDeployment
    workdir: Path
    extra_env: dict = field(default_factory=dict)
    procs: dict = field(default_factory=dict)
    # Processes started again when they exit, as the documented systemd units do
    # (``Restart=always``, docs/runbook.md); each restart is recorded.
    supervised: set = field(default_factory=set)
    restarts: list = field(default_factory=list)

    def __post_init__(self):
        self.db_name = f"fault_{uuid.uuid4().hex[:10]}"
        self.servers.redis.flush()
        self.servers.postgres.execute(f"CREATE DATABASE {self.db_name} TEMPLATE {TEMPLATE_DB}")
        self.web_port, self.standin_port = free_port(), free_port()
        self.env = self._env()

    @property
    def database_url(self) -> str:
        return self.servers.postgres.url(self.db_name)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def standin_url(self) -> str:
        return f"http://127.0.0.1:{self.standin_port}"

    def _env(self) -> dict:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("NTZS_", "ZENOPAY_", "MINT", "BEAT_"))
        }
        chain = self.deployment
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "PYTHONUNBUFFERED": "1",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.servers.redis.url,
                "APP_URL": self.web_url,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "CHAIN_ID": "31337",
                "BASE_SEPOLIA_RPC_URL": chain.url,
                "NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA": chain.address,
                "NTZS_DEPLOY_BLOCK": str(chain.deploy_block),
                "NTZS_MINT_WITH_REF": "true",
                "MINTER_PRIVATE_KEY": chain.minter_key,
                "SAFE_ADDRESS": "",
                "MINT_CONFIRMATIONS": "1",
                # A killed worker's claim (nothing signed) goes back to mint_pending after
                # this lease; the default 120 s would not fit the suite's time.
                "MINT_CLAIM_LEASE_S": "10",
                "MINT_FEE_BUMP_AFTER_S": "30",
                "MINT_BATCH_SIZE": "10",
                "ZENOPAY_SANDBOX": "false",
                "ZENOPAY_BASE_URL": f"{self.standin_url}/api",
                "ZENOPAY_API_KEY": API_KEY,
                "ZENOPAY_TIMEOUT": "5",
                "ZENOPAY_WEBHOOK_REQUIRE_KEY": "true",
                # A create a killed worker never sent is re-sent once ZenoPay's order-status
                # has said "not found" this long after (the floor is 2 x ZENOPAY_TIMEOUT).
                "ZENOPAY_CREATE_RESEND_AFTER_S": "1",
                "SAFE_MINT_THRESHOLD_TZS": "9000",
                "DEPOSIT_CREATE_MAX_PER_10_MIN": "100000",
                "USER_DAILY_LIMIT_TZS": "1000000000",
                "USER_MONTHLY_LIMIT_TZS": "1000000000",
                # The schedules that re-drive work, every second or two instead of 5-30 s.
                "BEAT_PROCESS_MINT_JOBS_S": "1",
                "BEAT_CONFIRM_MINTS_S": "1",
                "BEAT_POLL_ZENOPAY_S": "2",
                "BEAT_INITIATE_PAYMENTS_S": "5",
                "BEAT_LOCK_TTL_S": "10",
                "WEB_CONCURRENCY": "1",
                "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
                "NTZS_VAR_DIR": str(self.workdir / "var"),
            }
        )
        env.update(self.extra_env)
        return env

    # --- processes ---------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def log_text(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        with open(self.log_path(name), "a") as log:
            proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: a kill reaches the pool children too
            )
        self.procs[name] = proc
        return proc

    def start_standin(self) -> None:
        self._spawn(
            "standin",
            [sys.executable, str(REPO / "scripts" / "zenopay_standin.py")]
            + ["--port", str(self.standin_port), "--api-key", API_KEY],
        )
        wait_until(
            "the ZenoPay stand-in",
            lambda: _answers(f"{self.standin_url}/standin/health"),
            timeout=30,
        )

    def start_web(self) -> None:
        self._spawn(
            "web",
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application"]
            + ["--config", "gunicorn.conf.py"],
        )
        wait_until("gunicorn to answer /healthz", self._web_up, timeout=90)

    def _web_up(self) -> bool:
        self.alive("web")
        return _answers(f"{self.web_url}/healthz")

    def start_worker(self) -> None:
        """The Procfile's worker command (queues default and mint), prefork with two
        processes; returns once it logs that it is ready."""
        offset = len(self.log_text("worker"))
        self._spawn(
            "worker",
            [sys.executable, "-m", "celery", "-A", "config", "worker"]
            + ["--queues", "default,mint", "--loglevel", "INFO", "--concurrency", "2"]
            + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
        )
        wait_until(
            "the worker to be ready",
            lambda: self.alive("worker") or " ready." in self.log_text("worker")[offset:],
            timeout=90,
            interval=0.1,
        )

    def start_beat(self) -> None:
        self._spawn(
            "beat",
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
            + ["--schedule", str(self.workdir / "beat-schedule")],
        )

    def alive(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None and name in self.supervised:
            self.restarts.append((name, proc.returncode))
            print(f"{name} exited ({proc.returncode}); started again (Restart=always)", flush=True)
            self.kill(name)
            getattr(self, f"start_{name}")()
            return
        if proc is not None and proc.poll() is not None:
            tail = "\n".join(self.log_text(name).splitlines()[-30:])
            raise FaultSuiteError(f"the {name} process exited ({proc.returncode}):\n{tail}")

    def kill(self, name: str) -> None:
        """SIGKILL to the process and its whole group (a worker's pool children too)."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def close(self) -> None:
        for name in list(self.procs):  # the scenario is over: no graceful stop to wait for
            self.kill(name)
        try:
            self.servers.postgres.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        except psycopg.Error:
            pass

    # --- set-up and reads --------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise FaultSuiteError(f"manage.py {args[0]} failed:\n{result.stderr[-4000:]}")
        return result.stdout

    def seed_deposits(self, amounts: list[int]) -> list[str]:
        """Create one deposit per amount, for one customer with a verified wallet, in a
        process of its own; their initiation is enqueued on the broker as from the web."""
        code = (
            "import json; from tests.support.faults import fault_seed_deposits as seed; "
            f"print('IDS=' + json.dumps(seed(amounts={amounts!r})))"
        )
        out = self.manage("shell", "-c", code)
        line = next(line for line in out.splitlines() if line.startswith("IDS="))
        return json.loads(line[4:])

    def sql(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.database_url, connect_timeout=5) as db:
            return db.execute(query, params).fetchall()

    def statuses(self) -> Counter:
        return Counter(
            dict(self.sql("SELECT status, count(*) FROM deposits_depositrequest GROUP BY status"))
        )

    def standin_orders(self) -> dict[str, dict]:
        answer = requests.get(f"{self.standin_url}/standin/orders", timeout=30)
        return {order["order_id"]: order for order in answer.json()}

    def wait_all_minted(self, count: int, *, timeout: float) -> None:
        def done():
            for name in ("web", "worker", "beat"):
                self.alive(name)
            return self.statuses().get("minted", 0) >= count

        try:
            wait_until(f"{count} deposits to be minted", done, timeout=timeout, interval=0.5)
        except FaultSuiteError as exc:
            raise FaultSuiteError(f"{exc}; statuses now: {dict(self.statuses())}") from None


def fault_wait_settled(stack: FaultStack, sender: WebhookSender, *, timeout: float) -> None:
    """Until the flow is over: no initiation still pending (its re-drive comes after a
    minute), every order ZenoPay received paid and its webhook delivered, and every paid
    deposit minted."""

    def settled():
        for name in ("web", "worker", "beat"):
            stack.alive(name)
        if sender.error is not None:
            raise sender.error
        pending = stack.sql(
            "SELECT count(*) FROM deposits_depositrequest WHERE initiation = 'pending'"
        )[0][0]
        orders = stack.standin_orders()
        paid = [d for d in sender.deliveries.values() if d.delivered]
        statuses = stack.statuses()
        minted = statuses.get("minted", 0)
        # A deposit still submitted may be one whose create never left (its re-send comes),
        # or one killed during the call that never reached ZenoPay (it waits for expiry).
        return (
            not pending
            and statuses.get("submitted", 0) == len(fault_sent_unreached(stack, orders))
            and len(paid) == len(orders) == minted
            and not sender._pending
        )

    try:
        wait_until("the deposits to settle", settled, timeout=timeout, interval=1)
    except FaultSuiteError as exc:
        initiation = stack.sql(
            "SELECT initiation, count(*) FROM deposits_depositrequest GROUP BY 1"
        )
        raise FaultSuiteError(
            f"{exc}: {sender.summary()}; deposits {dict(stack.statuses())}, initiation "
            f"{dict(initiation)}"
        ) from None


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def fault_stack_start(
    servers: FaultServers, anvil: AnvilNode, tmp_path: Path, *, env: dict | None = None
) -> FaultStack:
    """A fresh NTZS deployment (so the chain's mint logs are this scenario's only), a fresh
    copy of the migrated database, the stand-in and gunicorn. Worker and beat are started
    by the scenario."""
    deployment = deploy_ntzs(anvil)
    stack = FaultStack(
        servers=servers, deployment=deployment, workdir=tmp_path, extra_env=env or {}
    )
    try:
        stack.start_standin()
        stack.start_web()
    except BaseException:
        stack.close()
        raise
    return stack


def fault_seed_deposits(*, amounts: list[int]) -> list[str]:
    """Run inside ``manage.py shell`` on the scenario's database (FaultStack.seed_deposits)."""
    Bank.objects.get_or_create(
        name="CRDB (ZenoPay settlement)", defaults={"is_zenopay_settlement": True}
    )
    person = User.objects.filter(email="fault-suite@ntzs.test").first()
    if person is None:
        person = customer(email="fault-suite@ntzs.test", phone="+255712345678")
        KycCaseFactory(user=person, status=KycCase.Status.APPROVED, reviewed_at=now())
        WalletFactory(user=person, verified=True)
    wallet = Wallet.objects.filter(user=person).first()
    ids = []
    for amount in amounts:
        deposit, _ = deposit_create(
            user=person,
            data=DepositInput(
                amount_tzs=amount,
                payment_provider="zenopay",
                wallet_id=wallet.pk,
                buyer_phone="0712345678",
            ),
        )
        ids.append(str(deposit.pk))
    return ids


class SlowProxy(TcpProxy):
    """A loopback proxy in front of the ZenoPay stand-in that, while ``slow`` is set, holds
    every answer for ``delay_s`` before passing it on: ZenoPay receives and processes the call
    at once (a create records the order) but answers after the client has given up."""

    def __init__(self, upstream_port: int, *, delay_s: float):
        self.delay_s = delay_s
        self.slow = threading.Event()
        super().__init__(upstream_port)

    def _forward(self, client) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self._track(upstream)
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=self._pump_slowly, args=(upstream, client), daemon=True).start()

    def _pump_slowly(self, src, dst) -> None:
        try:
            while data := src.recv(65536):
                if self.slow.is_set():
                    time.sleep(self.delay_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.close()
                except OSError:
                    pass


# --- ZenoPay's side: the customer's PIN and the webhook, retried as ZenoPay does ---------------


@dataclass
class Delivery:
    order_id: str
    attempts: list = field(default_factory=list)  # HTTP status, or the exception's name

    @property
    def delivered(self) -> int:
        return sum(1 for a in self.attempts if isinstance(a, int) and 200 <= a < 300)


class WebhookSender:
    """Approves every order the stand-in receives (webhook off at the stand-in) and POSTs
    ZenoPay's webhook to its ``webhook_url`` itself: a delivery that is refused, answered
    5xx or not answered is retried every ``retry_s`` until answered 2xx, as ZenoPay retries a
    failed callback. Runs in a thread until ``stop()``; ``deliveries`` records every attempt."""

    def __init__(self, stack: FaultStack, *, retry_s: float = 0.5, pace_s: float = 0.0, hold=None):
        self.stack = stack
        self.retry_s = retry_s
        self.pace_s = pace_s  # between two deliveries: webhooks arrive over a while
        self.hold = hold or threading.Event()  # set: deliveries wait (approvals go on)
        self.hold.clear()
        self.deliveries: dict[str, Delivery] = {}
        self._pending: list[tuple[str, dict]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self.http = requests.Session()
        self.error: BaseException | None = None

    def start(self) -> WebhookSender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._approve_new()
                self._deliver_pending()
                time.sleep(0.2)
        except BaseException as exc:  # seen by stop()
            self.error = exc

    def _approve_new(self) -> None:
        try:
            orders = self.stack.standin_orders()
        except requests.RequestException:
            return
        for order_id, order in orders.items():
            if order_id in self.deliveries or order["state"] != "PENDING":
                continue
            answer = self.http.post(
                f"{self.stack.standin_url}/standin/approve",
                json={"order_id": order_id, "webhook": False},
                timeout=30,
            )
            if answer.status_code != 200:
                raise FaultSuiteError(f"the stand-in refused to approve {order_id}: {answer.text}")
            self.deliveries[order_id] = Delivery(order_id)
            self._pending.append((order_id, order))

    def _deliver_pending(self) -> None:
        if self.hold.is_set():
            return
        still = []
        for order_id, order in self._pending:
            time.sleep(self.pace_s)
            status = self._post(order)
            self.deliveries[order_id].attempts.append(status)
            if not (isinstance(status, int) and 200 <= status < 300):
                still.append((order_id, order))
        self._pending = still
        if still:
            time.sleep(self.retry_s)

    def _post(self, order: dict):
        body = {
            "order_id": order["order_id"],
            "payment_status": "COMPLETED",
            "reference": order["reference"],
            "metadata": order.get("metadata") or {},
        }
        try:
            answer = self.http.post(
                order["webhook_url"],
                json=body,
                headers={"x-api-key": API_KEY},
                timeout=30,
            )
            return answer.status_code
        except requests.RequestException as exc:
            return type(exc).__name__

    @property
    def delivered(self) -> int:
        return sum(1 for d in self.deliveries.values() if d.delivered)

    def wait_delivered(self, count: int, *, timeout: float) -> None:
        def done():
            if self.error is not None:
                raise self.error
            delivered = [d for d in self.deliveries.values() if d.delivered]
            return len(delivered) >= count and not self._pending

        try:
            wait_until(f"{count} webhooks delivered", done, timeout=timeout)
        except FaultSuiteError as exc:
            initiation = self.stack.sql(
                "SELECT initiation, count(*) FROM deposits_depositrequest GROUP BY 1"
            )
            raise FaultSuiteError(
                f"{exc}: {self.summary()}; deposits {dict(self.stack.statuses())}, "
                f"initiation {dict(initiation)}"
            ) from None

    def summary(self) -> str:
        attempts = Counter(str(a) for d in self.deliveries.values() for a in d.attempts)
        retried = sum(1 for d in self.deliveries.values() if len(d.attempts) > 1)
        return (
            f"{len(self.deliveries)} orders approved, webhook attempts {dict(attempts)}, "
            f"{retried} retried"
        )


def fault_sent_unreached(stack: FaultStack, at_zenopay) -> set[str]:
    """Deposits whose create was stamped as sending, never answered, and is not at the
    stand-in: killed during the call before the request arrived."""
    rows = stack.sql(
        "SELECT id::text FROM deposits_depositrequest WHERE status = 'submitted' "
        "AND initiation = 'requested' AND initiation_sending_at IS NOT NULL "
        "AND initiation_answered_at IS NULL"
    )
    return {row[0] for row in rows if row[0] not in at_zenopay}


# --- The invariants --------------------------------------------------------------------------


def fault_invariants_assert(stack: FaultStack, sender: WebhookSender | None, ids: list[str]):
    """What every fault scenario must leave (DESIGN §14, invariants 1, 2, 6, 8, 10):

    - every paid deposit of ``ids`` minted, none left submitted, mint_pending,
      mint_processing or mint_failed (the recovery window is over);
    - exactly one ``Transfer`` from the zero address per deposit on chain (eth_getLogs over
      the scenario's own deployment), each to the deposit's wallet for its amount, and one
      ``DepositMinted`` per deposit reference; each claimed by its deposit (MintLogClaim);
    - ``totalSupply`` equal to the books (the minted deposits' shillings);
    - every webhook ZenoPay delivered (answered 2xx) stored as a PaymentNotification, and
      every order the customer paid has one: an attempt that failed counts only because the
      sender retried it until it was answered;
    - every deposit's create reached ZenoPay — one a killed worker never sent was re-sent
      (deposits.services.payments.payment_initiate_resend) — except a create killed during
      the HTTP call before its bytes reached ZenoPay: stamped as sending, never answered, it
      may have reached ZenoPay as far as the system can know, so it is never re-sent; it must
      be left submitted, requested and polled (the 72 h expiry ends it).
    Returns a one-line summary."""
    rows = stack.sql(
        "SELECT d.id::text, d.status, d.amount_tzs, lower(w.address), d.initiation, "
        "d.next_poll_at IS NOT NULL "
        "FROM deposits_depositrequest d JOIN accounts_wallet w ON w.id = d.wallet_id"
    )
    books = {row[0]: row for row in rows}
    assert sorted(books) == sorted(ids), "the database holds other deposits than the scenario's"
    sent_unreached: set[str] = set()
    if sender is not None:
        at_zenopay = stack.standin_orders()
        sent_unreached = fault_sent_unreached(stack, at_zenopay)
        unreached = {
            i: (books[i][1], books[i][4])
            for i in ids
            if i not in at_zenopay and i not in sent_unreached
        }
        assert not unreached, f"creates that never reached ZenoPay: {unreached}"
        for deposit_id in sent_unreached:
            _, status, _, _, initiation, polled = books[deposit_id]
            assert (status, initiation, polled) == ("submitted", "requested", True), (
                f"killed mid-call deposit {deposit_id} is {status}/{initiation}, polled={polled}"
            )
    ids = [i for i in ids if i not in sent_unreached]
    by_status = Counter(books[i][1] for i in ids)
    not_done = {i: books[i][1] for i in ids if books[i][1] in NOT_DONE}
    assert not not_done, f"deposits not minted after the recovery window: {not_done}"
    assert by_status == {"minted": len(ids)}, dict(by_status)

    chain = stack.deployment
    head = chain.w3.eth.block_number
    transfers = chain.contract.events.Transfer().get_logs(
        from_block=chain.deploy_block, to_block=head, argument_filters={"from": ZERO}
    )
    minted_logs = chain.contract.events.DepositMinted().get_logs(
        from_block=chain.deploy_block, to_block=head
    )
    refs = Counter(bytes(log["args"]["depositRef"]) for log in minted_logs)
    twice = [i for i in ids if refs[deposit_ref(uuid.UUID(i))] != 1]
    assert not twice, {i: refs[deposit_ref(uuid.UUID(i))] for i in twice}
    assert len(transfers) == len(ids), f"{len(transfers)} mint Transfer logs for {len(ids)}"
    assert len(minted_logs) == len(ids), f"{len(minted_logs)} DepositMinted for {len(ids)}"
    on_chain = Counter((log["args"]["to"].lower(), log["args"]["value"]) for log in transfers)
    expected = Counter((books[i][3], tzs_to_units(books[i][2])) for i in ids)
    assert on_chain == expected, "the mint Transfers do not match the deposits' wallets/amounts"
    claims = stack.sql(
        "SELECT c.deposit_id::text, c.tx_hash, c.log_index FROM minting_mintlogclaim c "
        "WHERE NOT EXISTS (SELECT 1 FROM minting_mintlogclaim n WHERE n.supersedes_id = c.id)"
    )
    assert sorted(c[0] for c in claims) == sorted(ids), "a deposit without exactly one claim"
    logs = {("0x" + bytes(t["transactionHash"]).hex(), t["logIndex"]) for t in transfers}
    assert {(c[1], c[2]) for c in claims} == logs, "the claims are not the mint logs"
    supply = chain.contract.functions.totalSupply().call()
    minted_tzs = sum(books[i][2] for i in ids)
    assert supply == tzs_to_units(minted_tzs), f"totalSupply {supply} != books {minted_tzs}"

    summary = f"{len(ids)} deposits minted once each, totalSupply = books = TSh {minted_tzs:,}"
    if sender is not None:
        stored = Counter(
            dict(
                stack.sql(
                    "SELECT order_id, count(*) FROM deposits_paymentnotification "
                    "WHERE kind = 'webhook' GROUP BY order_id"
                )
            )
        )
        lost = {
            order_id: (stored[order_id], delivery.attempts)
            for order_id, delivery in sender.deliveries.items()
            if stored[order_id] < delivery.delivered or not delivery.delivered
        }
        assert not lost, f"webhooks delivered but not stored (stored, attempts): {lost}"
        assert set(sender.deliveries) == set(ids), "an order was never paid by the sender"
        summary += f"; {sender.summary()}, {sum(stored.values())} stored"
    resent = stack.sql(
        "SELECT count(*) FROM deposits_depositrequest WHERE initiation_resent_at IS NOT NULL"
    )[0][0]
    if resent:
        summary += f"; {resent} create(s) a killed worker never sent were re-sent"
    if sent_unreached:
        summary += (
            f"; {len(sent_unreached)} create(s) killed mid-call before reaching ZenoPay left "
            "to polling and expiry"
        )
    return summary


def fault_seed() -> tuple[int, random.Random]:
    """The scenario's random seed: FAULT_SEED from the environment, else a fresh one."""
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1, 2**31))
    return seed, random.Random(seed)
