"""Readiness and queue figures for operators (DESIGN §8; runbook "Health Checks"): the
database and its migrations, the broker, the chain and the minter, the circuit breaker,
each periodic task's heartbeat, and the last webhook. Read-only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core.clock import now
from core.models import TaskHeartbeat
from deposits.models import DepositRequest, PaymentNotification


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
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return Check("database", False, f"unreachable ({type(exc).__name__})", critical=True)
    if pending:
        return Check("database", False, f"{len(pending)} migration(s) not applied",
                     critical=True)
    return Check("database", True, f"{connection.vendor}, migrations applied", critical=True)


def _broker() -> Check:
    from config.celery_app import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return Check("broker", False, f"unreachable ({type(exc).__name__})", critical=True)
    return Check("broker", True, app.conf.broker_url.split("://", 1)[0], critical=True)


def _chain() -> list[Check]:
    from minting.breaker import rpc_breaker
    from minting.chain import ChainError
    from minting.services import minter_check

    checks = [Check("circuit", rpc_breaker().state() == "closed", rpc_breaker().state())]
    try:
        result = minter_check()
    except ChainError as exc:
        return [*checks, Check("chain", False, str(exc))]
    if result is None:
        return [*checks, Check("chain", False, "the chain or the token could not be read")]
    return [*checks,
            Check("chain", True, f"chain id {result.chain_id}, token {result.contract_address}"),
            Check("minter", not result.problems,
                  "; ".join(result.problems) or f"MINTER_ROLE, {result.gas_balance_wei} wei")]


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


def health_checks(*, with_chain: bool = True) -> list[Check]:
    checks = [_database(), _broker()]
    if checks[0].ok:
        if with_chain:
            checks += _chain()
        checks += _heartbeats()
        checks.append(_webhook())
    return checks


def queue_counts() -> dict[str, int | str]:
    """Counts of the deposit queues and the broker's ``mint`` queue depth."""
    counts: dict[str, int | str] = {status: DepositRequest.objects.filter(status=status).count()
                                    for status in ("mint_pending", "mint_processing",
                                                   "mint_failed", "mint_requires_safe")}
    counts["held"] = DepositRequest.objects.exclude(hold_reason="").count()
    counts["broker mint queue"] = _mint_queue_depth()
    return counts


def _mint_queue_depth() -> int | str:
    from config.celery_app import app

    try:
        with app.connection_for_read() as conn:
            return conn.default_channel.queue_declare(queue="mint", passive=True).message_count
    except Exception as exc:  # noqa: BLE001 - shown, not raised
        return f"unavailable ({type(exc).__name__})"
