"""Celery beat's scheduler on Redis: one beat at a time, and a Redis restart survived.

celery-redbeat keeps the schedule in Redis and takes a lock at start so that one beat runs it.
As shipped it blocks in silence while another beat holds the lock, and it exits on the first
Redis error of a tick (a restart, a failover): its ``tick`` renews the lock and reads the
schedule from Redis with nothing around them. This subclass takes the lock inside ``tick``
instead, so every tick is one of three things:

- Redis cannot be reached: this beat sends nothing, says so once, and tries again in a few
  seconds (``Beat cannot reach Redis`` at WARNING; ``Beat reaches Redis again`` when it ends).
- The lock is another beat's: this beat runs no schedule, says so once, and tries again at the
  next tick; it takes over when that beat stops or its lock expires.
- The lock is this beat's: it renews it and sends what is due. A lock that is gone (expired
  while Redis was unreachable, or erased by a restart without persistence) is taken again
  before anything is sent, and the schedule's entries are written again, since a Redis that
  came back empty has none.

A Redis lock, not a PostgreSQL advisory lock, which transaction pooling would break.
"""

from __future__ import annotations

import contextlib
import logging
import time

from celery import signals
from redbeat.schedulers import (
    LUA_EXTEND_TO_SCRIPT,
    RedBeatScheduler,
    acquire_distributed_beat_lock,
    get_redis,
)
from redis.exceptions import LockError, RedisError

logger = logging.getLogger("worker")

# Seconds between two attempts while Redis cannot be reached.
REDIS_RETRY_S = 2.0
# A lock renewed longer ago than its TTL minus this may already be another beat's: this beat
# stops sending in the middle of a tick rather than risk it.
LOCK_MARGIN_S = 2.0

# celery-redbeat takes its lock at beat_init, blocking until it has it; this scheduler takes
# it at every tick that does not hold it. The module is imported (the scheduler is built)
# before Celery sends beat_init.
signals.beat_init.disconnect(acquire_distributed_beat_lock)


class OneBeatScheduler(RedBeatScheduler):
    """RedBeatScheduler whose lock is taken, renewed and lost inside ``tick``, and whose
    entries are written only by the beat that holds the lock."""

    _waiting_logged = False
    _outage_logged = False
    _renewed_at = 0.0  # time.monotonic() of the last renewal (or taking) of the lock

    def tick(self, min=min, **kwargs):  # redbeat's signature
        # LockError first: it is a RedisError too.
        try:
            if self.lock_key and not self._lock_held():
                return self.max_interval
            interval = self._send_due(min)
        except LockError:
            # The lock expired or was erased (a Redis restart) and renewing it failed: take
            # it again at the next tick, never send a schedule without it.
            logger.warning(
                "Beat lock %s was lost (expired or erased by a Redis restart): this beat sends "
                "nothing until it holds the lock again",
                self.lock_key,
            )
            self.lock = None
            return REDIS_RETRY_S
        except RedisError as exc:
            # Unreachable, or answering errors (a replica promoted mid-failover answers
            # READONLY, a full one OOM): the same wait either way.
            self._outage_note(exc)
            return REDIS_RETRY_S
        self._outage_over()
        return interval

    def _send_due(self, min) -> float:
        """redbeat's tick, with the lock's freshness checked before each send: a tick that
        outlives its lock (a publish stuck on a dead socket, Redis gone mid-tick) stops."""
        if self.lock_key:
            self.lock.extend(int(self.lock_timeout))
            self._renewed_at = time.monotonic()
        remaining_times = []
        for entry in self.schedule.values():
            if self.lock_key and not self._lock_fresh():
                logger.warning(
                    "Beat lock %s is older than its TTL allows: this tick stops sending",
                    self.lock_key,
                )
                return 0
            next_time_to_run = self.maybe_due(entry, **self._maybe_due_kwargs)
            if next_time_to_run:
                remaining_times.append(next_time_to_run)
        return min(remaining_times + [self.max_interval])

    def _lock_fresh(self) -> bool:
        return time.monotonic() - self._renewed_at < self.lock_timeout - LOCK_MARGIN_S

    def setup_schedule(self):
        """Celery calls this from the constructor: nothing then. A beat writes the entries
        when it takes the lock (``_lock_held``), so a second beat never rewrites the running
        one's (nor a beat started while Redis is down exits here)."""

    def close(self):
        try:
            super().close()
        except RedisError as exc:
            # The lock expires by itself within its TTL; nothing else is held.
            logger.warning("Beat could not release its lock on the way out: %s", exc)

    def _lock_held(self) -> bool:
        if self.lock is not None:
            return True
        client = get_redis(self.app)
        lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)  # extend to, not by
        taken = lock.acquire(blocking=False)
        taken_at = time.monotonic()
        self._outage_over()  # Redis answered
        if not taken:
            if not self._waiting_logged:
                logger.warning(
                    "Beat lock %s is held by another beat: this beat runs no schedule and "
                    "waits; it takes over when that beat stops or its lock expires (%s s "
                    "without renewal)",
                    self.lock_key,
                    self.lock_timeout,
                )
                self._waiting_logged = True
            return False
        # A Redis that restarted empty lost the entries too; writing them again keeps each
        # entry's last run where one survived. A failure here gives the lock back (or lets it
        # expire, if Redis is gone again).
        try:
            RedBeatScheduler.setup_schedule(self)
        except BaseException:
            with contextlib.suppress(RedisError):
                lock.release()
            raise
        self.lock = lock
        self._renewed_at = taken_at
        self._waiting_logged = False
        logger.warning("Beat lock %s held by this beat: it runs the schedule", self.lock_key)
        return True

    def _outage_note(self, exc: Exception) -> None:
        if not self._outage_logged:
            logger.warning(
                "Beat cannot reach Redis (%s: %s): it sends nothing and tries again every %s s",
                type(exc).__name__,
                exc,
                REDIS_RETRY_S,
            )
            self._outage_logged = True

    def _outage_over(self) -> None:
        if self._outage_logged:
            logger.warning("Beat reaches Redis again")
            self._outage_logged = False
