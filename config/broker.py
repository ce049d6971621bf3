"""The Redis broker transport, with two repairs of kombu 5.7.0's.

When the worker loses Redis (a restart, a failover), Celery closes the broken connection
before it reconnects. Closing a channel gives its unacknowledged messages back to their queue
(``restore_unacked``), which needs a Redis client. kombu can reach that step after the
connection has already let go of its transport's settings (a first close that failed half-way
on the dead socket, then a second close): building the client then fails with
``AttributeError: 'NoneType' object has no attribute 'hostname'``, which Celery does not
count among connection errors, and the worker exits ("Unrecoverable error") instead of
reconnecting (found by the fault suite, tests/faults/test_redis_restart.py). The same failure
meets a task that was running when the connection was lost and finishes after the worker
reconnected: its acknowledgement goes to the old, closed channel.

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
    def _released(self) -> bool:
        """The channel's connection is closed (it left its transport) or let go of its
        settings: nothing sent through it can reach Redis any more."""
        return self.connection is None or self.connection.client is None

    def basic_ack(self, delivery_tag, multiple=False):
        # A task received before the connection was lost and finished after the worker
        # reconnected acknowledges on its old, closed channel; kombu would fail building a
        # client there (AttributeError, fatal to the worker). Its message stays in Redis.
        if self._released():
            logger.warning(
                "A message received before the broker connection was lost was finished after "
                "it: its acknowledgement is dropped, and the message comes back after the "
                "visibility timeout (the task is safe to run twice)"
            )
            return
        super().basic_ack(delivery_tag, multiple=multiple)

    def basic_reject(self, delivery_tag, requeue=False):
        if self._released():
            logger.warning(
                "A message received before the broker connection was lost was rejected after "
                "it: the rejection is dropped, and the message comes back after the visibility "
                "timeout"
            )
            return
        super().basic_reject(delivery_tag, requeue=requeue)

    def close(self):
        try:
            super().close()
        except AttributeError:
            transport = self.connection
            if not self._released():
                raise  # not the released-connection case: a real defect, let it show
            logger.warning(
                "Broker channel closed after its connection was released: its unacknowledged "
                "messages stay in Redis and come back after the visibility timeout"
            )
            # What the failed close did not reach: the channel leaves its transport.
            if transport is not None:
                transport.close_channel(self)


class Transport(kombu_redis.Transport):
    Channel = Channel
