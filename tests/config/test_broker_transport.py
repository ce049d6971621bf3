"""The broker transport's repair (config.broker): a worker that loses Redis closes its broken
connection and reconnects; kombu 5.7.0 could fail that close with an AttributeError, which
made the worker exit (tests/faults/test_redis_restart.py runs the whole story)."""

from __future__ import annotations

import ssl

import pytest
import redis
from django.conf import settings
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

from config.settings.base import celery_settings

QUEUE = "test-broker-transport"


@pytest.fixture
def kombu_connection():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(QUEUE, "unacked", "unacked_index")
    connection = Connection(settings.CELERY_BROKER_URL, transport=settings.CELERY_BROKER_TRANSPORT)
    yield connection, client
    client.delete(QUEUE, "unacked", "unacked_index")


def _one_unacknowledged_message(connection: Connection):
    queue = Queue(QUEUE, Exchange(QUEUE), QUEUE)
    channel = connection.channel()
    producer = connection.Producer(channel)
    producer.publish({"n": 1}, exchange=queue.exchange, routing_key=QUEUE, declare=[queue])
    message = channel.basic_get(QUEUE, no_ack=False)
    assert message is not None
    return channel, message


def test_the_workers_broker_is_redis_through_the_repaired_transport():
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.CELERY_BROKER_TRANSPORT == "config.broker:Transport"
    connection = Connection(settings.CELERY_BROKER_URL, transport=settings.CELERY_BROKER_TRANSPORT)
    assert type(connection.transport).__module__ == "config.broker"
    assert isinstance(connection.transport, kombu_redis.Transport)
    assert connection.transport.client.hostname == "127.0.0.1"  # the URL was read


def test_a_channel_closed_after_its_connection_let_go_keeps_its_message_in_redis(
    kombu_connection, caplog
):
    connection, client = kombu_connection
    channel, _message = _one_unacknowledged_message(connection)
    assert client.hlen("unacked") == 1
    # What kombu's Connection does on a first close that failed half-way: the transport lets
    # go of the connection's settings, and the channel is closed a second time afterwards.
    channel.connection.client = None
    channel.close()
    assert channel.closed
    assert channel not in connection.transport.channels
    assert client.hlen("unacked") == 1, "the message waits in Redis for restore_visible"
    assert "its unacknowledged messages stay in Redis" in caplog.text


def test_the_stock_transport_fails_that_close_which_is_why_the_repair_exists(kombu_connection):
    connection, client = kombu_connection
    stock = Connection(settings.CELERY_BROKER_URL)  # kombu's own redis transport
    assert type(stock.transport) is kombu_redis.Transport
    channel, _message = _one_unacknowledged_message(stock)
    channel.connection.client = None
    with pytest.raises(AttributeError, match="hostname"):
        channel.close()
    stock.release()


def test_a_rediss_broker_keeps_tls_with_the_certificate_verified(tmp_path):
    tls = celery_settings(broker_url="rediss://cache.example:6380/0", var_dir=tmp_path)
    plain = celery_settings(broker_url="redis://cache.example:6379/0", var_dir=tmp_path)
    assert tls["CELERY_BROKER_TRANSPORT"] == "config.broker:Transport"
    assert tls["CELERY_BROKER_USE_SSL"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert "CELERY_BROKER_USE_SSL" not in plain
    connection = Connection(
        tls["CELERY_BROKER_URL"],
        transport=tls["CELERY_BROKER_TRANSPORT"],
        ssl=tls["CELERY_BROKER_USE_SSL"],
    )
    # kombu's redis channel builds an SSLConnection from this (Channel._connparams).
    assert connection.ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def _closed_as_after_an_outage(channel) -> None:
    """The old channel as Celery leaves it when Redis was down: closed (it left its
    transport), and without the connection pool its close could not rebuild (restoring the
    unacknowledged messages needed Redis)."""
    channel.close()
    channel._disconnect_pools()
    assert channel.connection is None and channel._pool is None


def test_a_task_finished_after_its_channel_closed_does_not_kill_the_worker(
    kombu_connection, caplog
):
    """A task running when the connection was lost finishes after the worker reconnected: its
    acknowledgement goes to the old channel, which Celery closed meanwhile."""
    connection, client = kombu_connection
    channel, message = _one_unacknowledged_message(connection)
    _closed_as_after_an_outage(channel)
    message.ack()
    assert "its acknowledgement is dropped" in caplog.text
    channel_b, message_b = _one_unacknowledged_message(connection)
    channel_b.connection.client = None  # a channel whose connection let go of its settings
    message_b.reject(requeue=True)
    assert "the rejection is dropped" in caplog.text


def test_the_stock_transport_fails_that_late_acknowledgement(kombu_connection):
    _connection, client = kombu_connection
    stock = Connection(settings.CELERY_BROKER_URL)
    channel, message = _one_unacknowledged_message(stock)
    _closed_as_after_an_outage(channel)
    with pytest.raises(AttributeError, match="client"):
        message.ack()
    stock.release()
