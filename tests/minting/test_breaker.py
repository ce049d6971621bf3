"""The shared RPC circuit breaker, in Redis and in the database row (DESIGN §7.6).

Each breaker instance built by `worker()` has its own storage object: two instances stand for
two worker processes that share only Redis or the database."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import connections

from minting.breaker import (
    CircuitBreaker,
    DatabaseCircuitStorage,
    RedisCircuitStorage,
    rpc_breaker,
)
from minting.models import CircuitState

STORAGES = ["redis", pytest.param("db", marks=pytest.mark.django_db)]


def breaker_messages(caplog, level: int | None = None) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "minting.breaker" and (level is None or r.levelno == level)
    ]


@pytest.fixture
def worker(kind, settings):
    """Builds one breaker per simulated worker process on the storage under test."""
    settings.CIRCUIT_OPEN_S = 30

    def build(**options) -> CircuitBreaker:
        storage = (
            RedisCircuitStorage("rpc", url=settings.REDIS_URL)
            if kind == "redis"
            else DatabaseCircuitStorage("rpc")
        )
        return CircuitBreaker("rpc", storage=storage, **options)

    build().reset()
    return build


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="minting.breaker")
    return caplog


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure()


@pytest.mark.parametrize("kind", STORAGES)
def test_five_consecutive_failures_open_the_circuit_and_four_do_not(kind, worker, logs):
    first, second = worker(), worker()
    fail(first, 2)
    fail(second, 2)
    assert first.state() == "closed"
    assert second.allow() is True
    assert breaker_messages(logs, logging.ERROR) == []

    first.record_failure()

    assert second.state() == "open"
    assert breaker_messages(logs, logging.ERROR) == [
        "Circuit breaker OPEN: rpc failed 5 times in a row; calls wait 30 s"
    ]


@pytest.mark.parametrize("kind", STORAGES)
def test_a_success_restarts_the_count_of_consecutive_failures(kind, worker, logs):
    breaker = worker()
    fail(breaker, 4)
    worker().record_success()
    fail(breaker, 4)
    assert breaker.state() == "closed"
    assert breaker.allow() is True
    assert not any("Circuit breaker CLOSED" in m for m in breaker_messages(logs))


@pytest.mark.parametrize("kind", STORAGES)
def test_an_open_circuit_refuses_every_worker_and_says_the_batch_is_delayed(kind, worker, logs):
    fail(worker(), 5)
    logs.clear()

    assert worker().allow() is False
    assert worker().allow() is False

    refusals = breaker_messages(logs, logging.WARNING)
    assert len(refusals) == 2
    assert all(m.startswith("Circuit breaker OPEN, delaying batch") for m in refusals)
    assert worker().state() == "open"


@pytest.mark.parametrize("kind", STORAGES)
def test_after_circuit_open_s_one_worker_gets_the_trial(kind, worker, logs, settings):
    settings.CIRCUIT_OPEN_S = 1
    first, second = worker(), worker()
    fail(first, 5)
    assert first.allow() is False

    time.sleep(1.05)

    assert first.state() == "half_open"
    assert first.allow() is True
    assert second.allow() is False
    assert first.allow() is False  # the trial is one call, not one process
    assert (
        breaker_messages(logs).count("Circuit breaker HALF_OPEN: rpc gets the one trial call") == 1
    )
    assert second.state() == "half_open"


@pytest.mark.parametrize(
    "kind", ["redis", pytest.param("db", marks=pytest.mark.django_db(transaction=True))]
)
def test_workers_racing_for_the_trial_get_exactly_one(kind, worker, settings):
    fail(worker(), 5)
    settings.CIRCUIT_OPEN_S = 0
    breakers = [worker() for _ in range(8)]
    start = threading.Barrier(len(breakers))
    granted: list[bool] = []

    def race(breaker: CircuitBreaker) -> None:
        try:
            start.wait()
            granted.append(breaker.allow())
        finally:
            connections.close_all()  # this thread's database connection

    threads = [threading.Thread(target=race, args=(b,)) for b in breakers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(granted) == [False] * 7 + [True]


@pytest.mark.parametrize("kind", STORAGES)
def test_a_successful_trial_closes_the_circuit_for_everyone(kind, worker, logs, settings):
    first, second = worker(), worker()
    fail(first, 5)
    settings.CIRCUIT_OPEN_S = 0
    assert first.allow() is True

    first.record_success()
    first.record_success()

    assert second.state() == "closed"
    assert second.allow() is True
    assert breaker_messages(logs).count("Circuit breaker CLOSED: the rpc trial call succeeded") == 1
    fail(second, 4)  # the count starts again from zero
    assert first.state() == "closed"


@pytest.mark.parametrize("kind", STORAGES)
def test_a_failed_trial_opens_the_circuit_again(kind, worker, logs, settings):
    first, second = worker(), worker()
    fail(first, 5)
    settings.CIRCUIT_OPEN_S = 0
    assert first.allow() is True
    settings.CIRCUIT_OPEN_S = 30
    logs.clear()

    first.record_failure()

    assert second.state() == "open"
    assert breaker_messages(logs, logging.ERROR) == [
        "Circuit breaker OPEN: the rpc trial call failed (6 failures); calls wait 30 s"
    ]
    assert second.allow() is False
    assert breaker_messages(logs, logging.WARNING)[-1].startswith(
        "Circuit breaker OPEN, delaying batch"
    )


@pytest.mark.parametrize("kind", STORAGES)
def test_a_late_success_while_open_does_not_close_the_circuit(kind, worker, logs):
    fail(worker(), 5)
    worker().record_success()  # a call that started before the circuit opened
    assert worker().state() == "open"
    assert worker().allow() is False
    assert not any("CLOSED" in m for m in breaker_messages(logs))


@pytest.mark.parametrize("kind", STORAGES)
def test_a_trial_whose_worker_died_is_handed_on_after_its_lease(kind, worker, settings):
    fail(worker(), 5)
    settings.CIRCUIT_OPEN_S = 0
    crashed, survivor = worker(trial_lease_s=0.2), worker(trial_lease_s=0.2)
    assert crashed.allow() is True  # ...and never reports
    assert survivor.allow() is False

    time.sleep(0.3)

    assert survivor.allow() is True
    survivor.record_success()
    assert crashed.state() == "closed"


@pytest.mark.parametrize("kind", STORAGES)
def test_reset_closes_the_circuit(kind, worker):
    fail(worker(), 5)
    worker().reset()
    assert worker().state() == "closed"
    assert worker().allow() is True


def test_the_rpc_breaker_keeps_its_state_in_redis_when_redis_is_configured(settings):
    breaker = rpc_breaker()
    assert isinstance(breaker.storage, RedisCircuitStorage)
    fail(breaker, 5)
    assert breaker.storage.client.hget("ntzs:circuit:rpc", "state") == b"open"
    assert rpc_breaker().allow() is False


@pytest.mark.django_db
def test_the_rpc_breaker_keeps_its_state_in_the_database_without_redis(settings):
    settings.REDIS_URL = ""
    breaker = rpc_breaker()
    assert isinstance(breaker.storage, DatabaseCircuitStorage)
    fail(breaker, 5)
    row = CircuitState.objects.get(name="rpc")
    assert (row.state, row.failures) == ("open", 5)
    assert row.opened_at is not None
    assert rpc_breaker().allow() is False
