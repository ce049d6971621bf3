"""The circuit breaker in front of the chain, shared by every worker (DESIGN §7.6).

5 consecutive failures open it for ``CIRCUIT_OPEN_S`` seconds: callers are refused and delay
their batch (nothing fails). Then it is HALF_OPEN and exactly one caller in the whole cluster
gets a trial call (a lock with a lease, so a trial whose worker died is handed on); the caller
re-checks the chain with it. Its success closes the circuit; its failure opens it again.

The state lives in Redis when ``REDIS_URL`` is set (each transition one Lua script, so it is
atomic), else in the ``CircuitState`` row (each transition one conditional UPDATE: the
process whose UPDATE matched made the transition and logs it, the others see a count of 0).

Written here rather than taken from pybreaker: pybreaker wraps the call itself (we need
``allow()``/``record_*()`` around a whole batch), its Redis state is read and written in
separate commands and every process grants itself a half-open trial, and it has no database
storage. What is left after adding those is this file.

Time is ``core.clock.now()`` in both storages (hosts run NTP; the periods are seconds).
Callers must not hold a database transaction open around the breaker: its row is meant to be
seen by the other workers at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from typing import Protocol

import redis
from django.conf import settings
from django.db.models import F, Q

from core.clock import now
from minting.models import CircuitState

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
FAILURE_THRESHOLD = 5
# How long one trial may take before another worker may try: the trial re-checks the chain
# (a few reads of up to RPC_TIMEOUT_S each, with retries).
TRIAL_LEASE_S = 60.0

# What a storage answers to "may I call?".
PASS = "pass"  # closed
REFUSED_OPEN = "open"  # open and the period is not over
TRIAL = "trial"  # half-open: this caller holds the one trial
REFUSED_BUSY = "busy"  # half-open: another caller holds the trial
# What a storage answers to "a call failed".
COUNTED, OPENED, REOPENED = "counted", "opened", "reopened"


class CircuitStorage(Protocol):
    def acquire(self, *, open_s: float, lease_s: float) -> tuple[str, float]:
        """(verdict, seconds until the circuit may be tried again)."""

    def success(self, *, open_s: float) -> str | None:
        """Close the circuit unless it is OPEN; returns ``HALF_OPEN`` when this call closed
        it, else None (it was closed already, or is OPEN and stays so)."""

    def failure(self, *, open_s: float, threshold: int) -> tuple[str, int]:
        """Count a failure; returns (``OPENED`` if this call opened the circuit, ``REOPENED``
        if it ended the half-open window, else ``COUNTED``; the failure count)."""

    def state(self, *, open_s: float) -> str: ...

    def reset(self) -> None: ...


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- Redis ----------------------------------------------------------------------------------

# KEYS[1] the state hash {state, failures, opened_at (ms)}, KEYS[2] the trial lock.
# A missing hash is CLOSED with no failures. Times come in as ARGV (the callers' clock).
_ACQUIRE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return {'pass', 0} end
local now = tonumber(ARGV[1])
local reopen_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at')) + tonumber(ARGV[2])
if state == 'open' and now < reopen_at then return {'open', reopen_at - now} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  return {'trial', 0}
end
return {'busy', math.max(redis.call('PTTL', KEYS[2]), 0)}
"""

_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then
  redis.call('DEL', KEYS[1])
  return false
end
if state == 'open' then
  local reopen_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at')) + tonumber(ARGV[2])
  if tonumber(ARGV[1]) < reopen_at then return false end
  state = 'half_open'
end
redis.call('DEL', KEYS[1], KEYS[2])
return state
"""

_FAILURE = """
local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'closed' then
  if failures >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[1])
    return {'opened', failures}
  end
  return {'counted', failures}
end
local reopen_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at')) + tonumber(ARGV[2])
if state == 'open' and now < reopen_at then return {'counted', failures} end
redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[1])
redis.call('DEL', KEYS[2])
return {'reopened', failures}
"""


@lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class RedisCircuitStorage:
    def __init__(self, name: str, *, url: str):
        self.key = f"ntzs:circuit:{name}"
        self.trial_key = f"{self.key}:trial"
        client = _redis_client(url)
        self.client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._success = client.register_script(_SUCCESS)
        self._failure = client.register_script(_FAILURE)

    def _keys(self) -> list[str]:
        return [self.key, self.trial_key]

    def acquire(self, *, open_s: float, lease_s: float) -> tuple[str, float]:
        verdict, wait_ms = self._acquire(
            keys=self._keys(),
            args=[_ms(now()), int(open_s * 1000), max(int(lease_s * 1000), 1)],
        )
        return verdict.decode(), wait_ms / 1000

    def success(self, *, open_s: float) -> str | None:
        closed_from = self._success(keys=self._keys(), args=[_ms(now()), int(open_s * 1000)])
        return closed_from.decode() if closed_from else None

    def failure(self, *, open_s: float, threshold: int) -> tuple[str, int]:
        outcome, failures = self._failure(
            keys=self._keys(), args=[_ms(now()), int(open_s * 1000), threshold]
        )
        return outcome.decode(), failures

    def state(self, *, open_s: float) -> str:
        state, opened_at = self.client.hmget(self.key, "state", "opened_at")
        if state is None:
            return CLOSED
        if state == b"open" and _ms(now()) >= int(opened_at) + int(open_s * 1000):
            return HALF_OPEN
        return state.decode()

    def reset(self) -> None:
        self.client.delete(self.key, self.trial_key)


# --- Database row ---------------------------------------------------------------------------


class DatabaseCircuitStorage:
    def __init__(self, name: str):
        self.name = name

    def _rows(self):
        return CircuitState.objects.filter(name=self.name)

    @staticmethod
    def _trial_window(moment: dt.datetime, open_s: float) -> Q:
        """HALF_OPEN, or OPEN with its period over (nobody has asked for the trial yet)."""
        return Q(state=HALF_OPEN) | Q(
            state=OPEN, opened_at__lte=moment - dt.timedelta(seconds=open_s)
        )

    def acquire(self, *, open_s: float, lease_s: float) -> tuple[str, float]:
        row = self._rows().values("state", "opened_at", "trial_until").first()
        if row is None or row["state"] == CLOSED:
            return PASS, 0.0
        moment = now()
        reopen_at = row["opened_at"] + dt.timedelta(seconds=open_s)
        if row["state"] == OPEN and moment < reopen_at:
            return REFUSED_OPEN, (reopen_at - moment).total_seconds()
        taken = (
            self._rows()
            .filter(self._trial_window(moment, open_s))
            .filter(Q(trial_until__isnull=True) | Q(trial_until__lte=moment))
            .update(state=HALF_OPEN, trial_until=moment + dt.timedelta(seconds=lease_s))
        )
        if taken:
            return TRIAL, 0.0
        trial_until = row["trial_until"] or moment
        return REFUSED_BUSY, max((trial_until - moment).total_seconds(), 0.0)

    def success(self, *, open_s: float) -> str | None:
        row = self._rows().values("state", "failures").first()
        if row is None or (row["state"] == CLOSED and row["failures"] == 0):
            return None  # the hot path: one read, no write
        if row["state"] == CLOSED:
            self._rows().filter(state=CLOSED).update(failures=0)
            return None
        closed = (
            self._rows()
            .filter(self._trial_window(now(), open_s))
            .update(state=CLOSED, failures=0, opened_at=None, trial_until=None)
        )
        return HALF_OPEN if closed else None

    def failure(self, *, open_s: float, threshold: int) -> tuple[str, int]:
        CircuitState.objects.get_or_create(name=self.name)
        moment = now()
        if (
            self._rows()
            .filter(self._trial_window(moment, open_s))
            .update(state=OPEN, opened_at=moment, trial_until=None, failures=F("failures") + 1)
        ):
            outcome = REOPENED
        else:
            self._rows().update(failures=F("failures") + 1)
            # Of all the workers whose failure reaches the threshold, one makes this update.
            opened = (
                self._rows()
                .filter(state=CLOSED, failures__gte=threshold)
                .update(state=OPEN, opened_at=moment, trial_until=None)
            )
            outcome = OPENED if opened else COUNTED
        return outcome, self._rows().values_list("failures", flat=True).get()

    def state(self, *, open_s: float) -> str:
        row = self._rows().values("state", "opened_at").first()
        if row is None:
            return CLOSED
        if row["state"] == OPEN and now() >= row["opened_at"] + dt.timedelta(seconds=open_s):
            return HALF_OPEN
        return row["state"]

    def reset(self) -> None:
        self._rows().update(state=CLOSED, failures=0, opened_at=None, trial_until=None)


def circuit_storage_default(name: str) -> CircuitStorage:
    if settings.REDIS_URL:
        return RedisCircuitStorage(name, url=settings.REDIS_URL)
    return DatabaseCircuitStorage(name)


# --- The breaker ----------------------------------------------------------------------------


class CircuitBreaker:
    """Ask ``allow()`` before a batch of chain calls; report the outcome with
    ``record_success()`` or ``record_failure()`` (one report per allowed batch).

    A success reported while the circuit is OPEN (a call that started before it opened) does
    not close it: only a success in HALF_OPEN does, after the trial re-checked the chain.
    """

    def __init__(
        self,
        name: str = "rpc",
        *,
        storage: CircuitStorage | None = None,
        failure_threshold: int = FAILURE_THRESHOLD,
        trial_lease_s: float = TRIAL_LEASE_S,
    ):
        self.name = name
        self.storage = storage if storage is not None else circuit_storage_default(name)
        self.failure_threshold = failure_threshold
        self.trial_lease_s = trial_lease_s

    @staticmethod
    def _open_s() -> int:
        return int(settings.CIRCUIT_OPEN_S)  # whole seconds, read per call (tests change it)

    def allow(self) -> bool:
        verdict, wait_s = self.storage.acquire(open_s=self._open_s(), lease_s=self.trial_lease_s)
        if verdict == PASS:
            return True
        if verdict == TRIAL:
            logger.warning("Circuit breaker HALF_OPEN: %s gets the one trial call", self.name)
            return True
        if verdict == REFUSED_OPEN:
            logger.warning(
                "Circuit breaker OPEN, delaying batch (%s, half-open in %.0f s)", self.name, wait_s
            )
        else:
            logger.info(
                "circuit breaker %s: the trial call runs in another worker, delaying batch",
                self.name,
            )
        return False

    def record_success(self) -> None:
        if self.storage.success(open_s=self._open_s()) is not None:
            logger.warning("Circuit breaker CLOSED: the %s trial call succeeded", self.name)

    def record_failure(self) -> None:
        outcome, failures = self.storage.failure(
            open_s=self._open_s(), threshold=self.failure_threshold
        )
        if outcome == OPENED:
            logger.error(
                "Circuit breaker OPEN: %s failed %d times in a row; calls wait %g s",
                self.name,
                failures,
                self._open_s(),
            )
        elif outcome == REOPENED:
            logger.error(
                "Circuit breaker OPEN: the %s trial call failed (%d failures); calls wait %g s",
                self.name,
                failures,
                self._open_s(),
            )

    def state(self) -> str:
        return self.storage.state(open_s=self._open_s())

    def reset(self) -> None:
        self.storage.reset()
        logger.info("circuit breaker %s reset to closed", self.name)


def rpc_breaker() -> CircuitBreaker:
    """The breaker every worker consults before talking to the chain."""
    return CircuitBreaker("rpc")
