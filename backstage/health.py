"""Readiness and queue figures for operators (DESIGN §8; runbook "Health Checks"): the
database and its migrations, the cache and the broker, the chain and the minter, the circuit
breaker, each periodic task's heartbeat, and the last webhook.

Read-only: nothing here writes a row or opens or resolves an alert. The chain figures come
from the last stored ``check_minter`` result (``MinterCheckRecord``), so a health page costs no
RPC call; only the operator's ``healthcheck`` command reads the chain live (``minter_read``,
which writes nothing either)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.clock import now
from core.models import Alert, TaskHeartbeat
from core.money import units_format
from deposits.models import DepositRequest, PaymentNotification
from minting.breaker import rpc_breaker
from minting.chain import ChainError
from minting.models import MinterCheckRecord
from minting.selectors import mints_deferred_by_cap_count
from minting.services import minter_read
from reconciliation.models import IndexerCursor, SupplySnapshot

# The anonymous readiness answer is reused for this long (per process), so a flood of
# /readyz requests costs at most one round of checks per process every 10 seconds.
READY_CACHE_S = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    critical: bool = False  # the process cannot serve without it


def _database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # any failure is the answer
        return Check("database", False, f"unreachable ({type(exc).__name__})", critical=True)
    if pending:
        return Check("database", False, f"{len(pending)} migration(s) not applied", critical=True)
    return Check("database", True, f"{connection.vendor}, migrations applied", critical=True)


def _cache() -> Check:
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    try:
        cache.get("ntzs:readyz-probe")  # a read: the probe never stores anything
    except Exception as exc:
        return Check("cache", False, f"unreachable ({type(exc).__name__})", critical=True)
    return Check("cache", True, backend, critical=True)


def _broker() -> Check:
    app = current_app._get_current_object()

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return Check("broker", False, f"unreachable ({type(exc).__name__})", critical=True)
    return Check("broker", True, app.conf.broker_url.split("://", 1)[0], critical=True)


def _circuit() -> Check:
    state = rpc_breaker().state()
    return Check("circuit", state == "closed", state)


def _chain_stored() -> list[Check]:
    """The last ``check_minter`` result; stale when older than twice the task's interval."""
    record = MinterCheckRecord.objects.filter(name="minter").first()
    if record is None:
        return [Check("chain", False, "never checked (minting.tasks.check_minter has not run)")]
    age = int((now() - record.checked_at).total_seconds())
    every = settings.BEAT_INTERVALS_S.get("minting.tasks.check_minter", 600)
    checked = f"checked {age} s ago"
    fresh = age <= 2 * every
    if not record.reachable:
        return [Check("chain", False, f"{record.error or 'unreachable'}; {checked}")]
    return [
        Check(
            "chain",
            fresh,
            f"chain id {record.chain_id}, token {record.contract_address}; {checked}",
        ),
        Check(
            "minter",
            not record.problems,
            "; ".join(record.problems) or f"MINTER_ROLE, {record.gas_balance_wei} wei",
        ),
    ]


def _chain_live() -> list[Check]:
    try:
        result = minter_read()
    except ChainError as exc:
        return [Check("chain", False, str(exc))]
    return [
        Check("chain", True, f"chain id {result.chain_id}, token {result.contract_address}"),
        Check(
            "minter",
            not result.problems,
            "; ".join(result.problems) or f"MINTER_ROLE, {result.gas_balance_wei} wei",
        ),
    ]


def _heartbeats() -> list[Check]:
    beats = {b.task_name: b for b in TaskHeartbeat.objects.all()}
    checks = []
    for task, every in settings.BEAT_INTERVALS_S.items():
        beat = beats.get(task)
        seen = beat.last_finished if beat else None
        fresh = seen is not None and now() - seen <= dt.timedelta(seconds=2 * every)
        detail = f"last finished {seen:%Y-%m-%d %H:%M:%S} UTC" if seen else "never ran"
        checks.append(Check(f"task {task}", fresh, detail))
    return checks


def _webhook() -> Check:
    last = PaymentNotification.objects.filter(kind="webhook").order_by("-received_at").first()
    url = f"{settings.APP_URL}/api/webhooks/zenopay"
    if last is None:
        return Check("webhook", True, f"{url}; no webhook received yet")
    age = int((now() - last.received_at).total_seconds())
    return Check("webhook", True, f"{url}; last webhook {age} s ago")


def _every(task: str, default: int) -> int:
    return settings.BEAT_INTERVALS_S.get(task, default)


def _indexer() -> list[Check]:
    """Each stream's cursor: its block, and stale when it has not moved (or been confirmed
    at the head) for twice the indexer's interval."""
    cursors = list(IndexerCursor.objects.order_by("name"))
    if not cursors:
        return [Check("indexer", False, "never ran (reconciliation.tasks.index_chain)")]
    every = _every("reconciliation.tasks.index_chain", 15)
    checks = []
    for cursor in cursors:
        age = int((now() - cursor.updated_at).total_seconds())
        checks.append(
            Check(
                f"indexer {cursor.name}",
                age <= 2 * every,
                f"block {cursor.block_number}, {age} s ago",
            )
        )
    return checks


def _snapshot() -> Check:
    """The last supply snapshot: fresh, readable and balanced, or why not."""
    snapshot = SupplySnapshot.objects.order_by("-at").first()
    if snapshot is None:
        return Check("supply", False, "no snapshot yet (reconciliation.tasks.snapshot_supply)")
    age = int((now() - snapshot.at).total_seconds())
    fresh = age <= 2 * _every("reconciliation.tasks.snapshot_supply", 300)
    if snapshot.discrepancy_units is None:
        reason = snapshot.unavailable_reason or "the supply could not be read"
        return Check("supply", False, f"unavailable ({reason}); {age} s ago")
    discrepancy = int(snapshot.discrepancy_units)
    detail = f"block {snapshot.block_number}, discrepancy {units_format(discrepancy)}; {age} s ago"
    return Check("supply", fresh and discrepancy == 0, detail)


def _alerts_open() -> Check:
    kinds = sorted(
        set(Alert.objects.filter(resolved_at__isnull=True).values_list("kind", flat=True))
    )
    if not kinds:
        return Check("alerts", True, "none open")
    count = Alert.objects.filter(resolved_at__isnull=True).count()
    return Check("alerts", False, f"{count} open: {', '.join(kinds)}")


def health_checks(*, chain: str = "stored") -> list[Check]:
    """Every check. ``chain``: "stored" (the last check_minter result), "live" (read the
    chain now, for the operator's command) or "none"."""
    checks = [_database(), _cache(), _broker()]
    if checks[0].ok:
        checks.append(_circuit())
        if chain == "stored":
            checks += _chain_stored()
        elif chain == "live":
            checks += _chain_live()
        checks += _heartbeats()
        checks.append(_webhook())
        checks += _indexer()
        checks.append(_snapshot())
        checks.append(_alerts_open())
    return checks


def is_ready(checks: list[Check]) -> bool:
    """The web process can serve: every critical check passes (the chain never decides)."""
    return all(c.ok for c in checks if c.critical)


_ready_lock = threading.Lock()
_ready_memo: dict[str, float | bool] = {}


def readiness() -> bool:
    """Database (reachable, migrations applied), cache and broker, remembered for
    READY_CACHE_S in this process. Kept in memory rather than in the cache: the local
    profile's cache is a database table, and answering /readyz must never write a row."""
    with _ready_lock:
        at = _ready_memo.get("at")
        if at is not None and time.monotonic() - at < READY_CACHE_S:
            return bool(_ready_memo["ready"])
    ready = is_ready([_database(), _cache(), _broker()])
    with _ready_lock:
        _ready_memo.update(at=time.monotonic(), ready=ready)
    return ready


def readiness_forget() -> None:
    """Drop the remembered answer (tests that change a dependency between two requests)."""
    with _ready_lock:
        _ready_memo.clear()


def queue_counts() -> dict[str, int | str]:
    """Counts of the deposit queues, the broker's ``mint`` queue depth, open alerts, and
    where the indexer and the last supply snapshot stand."""
    counts: dict[str, int | str] = {
        status: DepositRequest.objects.filter(status=status).count()
        for status in ("mint_pending", "mint_processing", "mint_failed", "mint_requires_safe")
    }
    counts["held"] = DepositRequest.objects.exclude(hold_reason="").count()
    counts["deferred by the cap"] = mints_deferred_by_cap_count()
    counts["broker mint queue"] = _mint_queue_depth()
    counts["open alerts"] = Alert.objects.filter(resolved_at__isnull=True).count()
    counts.update({check.name: check.detail for check in (*_indexer(), _snapshot())})
    return counts


def _mint_queue_depth() -> int | str:
    app = current_app._get_current_object()

    try:
        with app.connection_for_read() as conn:
            return conn.default_channel.queue_declare(queue="mint", passive=True).message_count
    except Exception as exc:  # shown, not raised
        return f"unavailable ({type(exc).__name__})"
