"""The Redis broker transport, with one repair of kombu 5.7.0's.

When the worker loses Redis (a restart, a failover), Celery closes the broken connection
before it reconnects. Closing a channel gives its unacknowledged messages back to their queue
(``restore_unacked``), which needs a Redis client. kombu can reach that step after the
connection has already let go of its transport's settings (a first close that failed half-way
on the dead socket, then a second close): building the client then fails with
``AttributeError: 'NoneType' object has no attribute 'hostname'``, which Celery does not
count among connection errors, and the worker exits ("Unrecoverable error") instead of
reconnecting (found by the fault suite, tests/faults/test_redis_restart.py).

Nothing is lost by not restoring there: the messages stay in Redis's unacked set and kombu's
``restore_visible`` gives them back after the visibility timeout (kombu's default, an hour;
every task is safe to run twice); and the database, not the broker, is the durable queue
(DESIGN §2): beat re-drives every step from its row long before that.
"""

from __future__ import annotations

import logging

from kombu.transport import redis as kombu_redis

logger = logging.getLogger("worker")


class Channel(kombu_redis.Channel):
    def close(self):
        try:
            super().close()
        except AttributeError:
            transport = self.connection
            if transport is None or transport.client is not None:
                raise  # not the released-connection case: a real defect, let it show
            logger.warning(
                "Broker channel closed after its connection was released: its unacknowledged "
                "messages stay in Redis and come back after the visibility timeout"
            )
            # What the failed close did not reach: the channel leaves its transport.
            transport.close_channel(self)


class Transport(kombu_redis.Transport):
    Channel = Channel
