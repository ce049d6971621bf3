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

from celery import signals
from redbeat.schedulers import (
    LUA_EXTEND_TO_SCRIPT,
    RedBeatScheduler,
    acquire_distributed_beat_lock,
    get_redis,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("worker")

# Seconds between two attempts while Redis cannot be reached.
REDIS_RETRY_S = 2.0

# celery-redbeat takes its lock at beat_init, blocking until it has it; this scheduler takes
# it at every tick that does not hold it. The module is imported (the scheduler is built)
# before Celery sends beat_init.
signals.beat_init.disconnect(acquire_distributed_beat_lock)


class OneBeatScheduler(RedBeatScheduler):
    """RedBeatScheduler whose lock is taken, renewed and lost inside ``tick``."""

    _waiting_logged = False
    _outage_logged = False

    def tick(self, min=min, **kwargs):  # redbeat's signature
        try:
            if self.lock_key and not self._lock_held():
                return self.max_interval
            interval = super().tick(min=min, **kwargs)
        except LockError:
            # The lock expired or was erased (a Redis restart) and renewing it failed: take
            # it again at the next tick, never send a schedule without it.
            logger.warning(
                "Beat lock %s was lost (expired or erased by a Redis restart): this beat sends "
                "nothing until it holds the lock again",
                self.lock_key,
            )
            self.lock = None
            return 0
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self._outage_note(exc)
            return REDIS_RETRY_S
        self._outage_over()
        return interval

    def setup_schedule(self):
        """At start (Celery calls this from the constructor): a beat started while Redis is
        down waits for it instead of exiting; the entries are written when it takes the lock."""
        try:
            super().setup_schedule()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self._outage_note(exc)

    def close(self):
        try:
            super().close()
        except (RedisConnectionError, RedisTimeoutError, LockError) as exc:
            # The lock expires by itself within its TTL; nothing else is held.
            logger.warning("Beat could not release its lock on the way out: %s", exc)

    def _lock_held(self) -> bool:
        if self.lock is not None:
            return True
        client = get_redis(self.app)
        lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)  # extend to, not by
        taken = lock.acquire(blocking=False)
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
        # entry's last run where one survived. Not this class's forgiving setup_schedule: a
        # failure here gives the lock back (or lets it expire, if Redis is gone again).
        try:
            RedBeatScheduler.setup_schedule(self)
        except BaseException:
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError, LockError):
                lock.release()
            raise
        self.lock = lock
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
