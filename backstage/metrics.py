"""Prometheus gauges for ``/metrics`` (DESIGN §8), computed from the database at scrape time.

A collector that reads the database is right with many web processes: each scrape answers the
same figures whichever process serves it, where in-process counters would each hold a part.
Chain figures (minter gas, paused) come from the last stored ``check_minter`` result; a scrape
never makes an RPC call and never writes a row. A figure that cannot be known (no snapshot
yet, an unavailable supply) is left out rather than served as 0."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, F, Min
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.clock import now, today_utc
from core.models import Alert, TaskHeartbeat
from deposits.models import DepositRequest
from minting.breaker import rpc_breaker
from minting.models import DailyIssuance, MintAttempt, MinterCheckRecord, MintTransaction
from minting.services.ledger import effective_cap
from reconciliation.models import IndexerCursor, SupplySnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_SAMPLE = 1_000  # the latest minted deposits the confirmation latency is taken over
CIRCUIT_STATES = ("closed", "open", "half_open")


def _seconds(delta: dt.timedelta) -> int:
    return int(delta.total_seconds())


def _gauge(name: str, doc: str, value, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    if labels is None:
        return GaugeMetricFamily(name, doc, value=value)
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def _deposits() -> Iterator[GaugeMetricFamily]:
    by_status = dict(
        DepositRequest.objects.order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    family = GaugeMetricFamily("ntzs_deposits", "Deposits by status.", labels=["status"])
    for status in DepositRequest.Status.values:
        family.add_metric([status], by_status.get(status, 0))
    yield family
    yield _gauge(
        "ntzs_deposits_held",
        "Deposits on hold.",
        DepositRequest.objects.exclude(hold_reason="").count(),
    )
    oldest = DepositRequest.objects.filter(status=DepositRequest.Status.SUBMITTED).aggregate(
        at=Min("created_at")
    )["at"]
    yield _gauge(
        "ntzs_deposit_oldest_unpaid_age_seconds",
        "Age of the oldest submitted (unpaid or unapproved) deposit; 0 when none.",
        _seconds(now() - oldest) if oldest else 0,
    )


def _mints() -> Iterator[GaugeMetricFamily]:
    in_flight = MintTransaction.objects.filter(
        status__in=(
            MintTransaction.Status.SIGNED,
            MintTransaction.Status.SENT,
            MintTransaction.Status.AWAITING_CONFIRMATIONS,
        )
    ).count()
    yield _gauge("ntzs_mints_in_flight", "Mint transactions signed or sent, not final.", in_flight)
    since = now() - dt.timedelta(days=1)
    failed = MintAttempt.objects.filter(
        status__in=(MintAttempt.Status.MINED_REVERTED, MintAttempt.Status.REJECTED),
        created_at__gte=since,
    ).count()
    yield _gauge(
        "ntzs_mint_attempts_failed_last_day",
        "Mint attempts reverted or rejected by a node in the last 24 hours.",
        failed,
    )
    latencies = sorted(
        _seconds(minted - confirmed)
        for minted, confirmed in DepositRequest.objects.filter(
            status=DepositRequest.Status.MINTED,
            minted_at__isnull=False,
            fiat_confirmed_at__isnull=False,
        )
        .order_by("-minted_at")
        .values_list("minted_at", "fiat_confirmed_at")[:LATENCY_SAMPLE]
    )
    if latencies:
        family = GaugeMetricFamily(
            "ntzs_mint_confirmation_latency_seconds",
            f"From payment confirmed to minted, over the latest {LATENCY_SAMPLE} mints.",
            labels=["quantile"],
        )
        for label, q in (("0.5", 50), ("0.95", 95), ("1", 100)):
            index = min(len(latencies) - 1, (len(latencies) * q) // 100)
            family.add_metric([label], latencies[index])
        yield family


def _cap() -> Iterator[GaugeMetricFamily]:
    day = today_utc()
    issuance = DailyIssuance.objects.filter(day=day).first() or DailyIssuance(day=day)
    used = issuance.reserved_tzs + issuance.issued_tzs + issuance.safe_issued_tzs
    yield _gauge("ntzs_cap_tzs", "Today's effective issuance cap (TZS).", effective_cap(issuance))
    yield _gauge("ntzs_cap_used_tzs", "Today's cap used: reserved + issued + Safe-issued.", used)


def _chain() -> Iterator[GaugeMetricFamily]:
    state = rpc_breaker().state()
    family = GaugeMetricFamily(
        "ntzs_rpc_circuit_state", "The RPC circuit breaker (1 = current).", labels=["state"]
    )
    for name in CIRCUIT_STATES:
        family.add_metric([name], 1 if state == name else 0)
    yield family
    record = MinterCheckRecord.objects.filter(name="minter").first()
    if record is None:
        return
    yield _gauge(
        "ntzs_minter_check_age_seconds",
        "Age of the last stored check_minter result.",
        _seconds(now() - record.checked_at),
    )
    if record.gas_balance_wei is not None:
        yield _gauge(
            "ntzs_minter_gas_wei",
            "The minter's gas balance at the last check (wei).",
            int(record.gas_balance_wei),
        )
    yield _gauge("ntzs_token_paused", "The token was paused at the last check.", record.paused)


def _reconciliation() -> Iterator[GaugeMetricFamily]:
    cursors = list(IndexerCursor.objects.all())
    if cursors:
        block = GaugeMetricFamily(
            "ntzs_indexer_block", "Last block indexed, per stream.", labels=["stream"]
        )
        age = GaugeMetricFamily(
            "ntzs_indexer_lag_seconds",
            "Seconds since the stream's cursor last moved.",
            labels=["stream"],
        )
        for cursor in cursors:
            block.add_metric([cursor.name], cursor.block_number)
            age.add_metric([cursor.name], _seconds(now() - cursor.updated_at))
        yield block
        yield age
    snapshot = SupplySnapshot.objects.order_by("-at").first()
    if snapshot is None:
        return
    yield _gauge(
        "ntzs_supply_snapshot_age_seconds",
        "Age of the last supply snapshot.",
        _seconds(now() - snapshot.at),
    )
    yield _gauge(
        "ntzs_supply_available",
        "The last snapshot could read the on-chain supply (1) or not (0).",
        snapshot.discrepancy_units is not None,
    )
    if snapshot.discrepancy_units is not None:
        # Prometheus carries a double: the units gauge shows the size, and the exact
        # "is there any" answer has its own gauge (a discrepancy below 2**-53 of the supply
        # must not read as 0).
        yield _gauge(
            "ntzs_supply_discrepancy_units",
            "On-chain supply minus (DB minted + reconciled), token base units.",
            int(snapshot.discrepancy_units),
        )
        yield _gauge(
            "ntzs_supply_discrepancy",
            "1 when the last snapshot's discrepancy is not exactly 0.",
            snapshot.discrepancy_units != 0,
        )


def _alerts() -> Iterator[GaugeMetricFamily]:
    family = GaugeMetricFamily("ntzs_alerts_open", "Open alerts by kind.", labels=["kind"])
    for kind, n in (
        Alert.objects.filter(resolved_at__isnull=True)
        .order_by()
        .values_list("kind")
        .annotate(n=Count("pk"))
        .values_list("kind", "n")
    ):
        family.add_metric([kind], n)
    yield family


def _heartbeats() -> Iterator[GaugeMetricFamily]:
    family = GaugeMetricFamily(
        "ntzs_task_heartbeat_age_seconds",
        "Seconds since each periodic task last finished (absent: never ran).",
        labels=["task"],
    )
    finished = dict(
        TaskHeartbeat.objects.filter(last_finished__isnull=False).values_list(
            "task_name", F("last_finished")
        )
    )
    for task in settings.BEAT_INTERVALS_S:
        if task in finished:
            family.add_metric([task], _seconds(now() - finished[task]))
    yield family


class DatabaseCollector(Collector):
    def collect(self):
        for part in (_deposits, _mints, _cap, _chain, _reconciliation, _alerts, _heartbeats):
            yield from part()


def metrics_text() -> bytes:
    """The scrape's body: a registry of its own per call, so nothing is kept between scrapes
    (and no process-wide default collectors leak the interpreter's details)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return generate_latest(registry)
