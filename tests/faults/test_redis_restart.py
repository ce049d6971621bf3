"""Redis (broker and cache) crashed and started again while ZenoPay's webhooks arrive (issue 16
point 5).

The fault suite's own Redis, without persistence, is killed while the webhooks of 40 paid
orders are being delivered one by one, stays down 3 s and comes back empty: every queued
message, the beat lock and every cached value are gone. The webhook is stored before anything
is enqueued; the database is the durable queue and beat re-drives every step from its row.

Worker and beat run as the documented systemd units do (``Restart=always``): the Celery worker
of the locked versions (celery/kombu 5.7.0, redis-py 8.1.0) exits on a lost broker connection
("Unrecoverable error: AttributeError: 'NoneType' object has no attribute 'hostname'", in
kombu's restore of unacknowledged messages while closing the channel) instead of reconnecting.
Beat (celery-redbeat) exits too ("beat raised exception … ConnectionError").
``test_worker_and_beat_keep_running_across_a_redis_restart`` reproduces that alone; the
scenario checks that, restarted, nothing is lost or minted twice.
"""

from __future__ import annotations

import time

import pytest

from tests.support.faults import WebhookSender, fault_invariants_assert, wait_until

pytestmark = pytest.mark.slow

DEPOSITS = 40
DOWN_S = 3


def test_no_webhook_is_lost_and_every_deposit_is_minted_once_when_redis_restarts(
    fault_stack, fault_servers
):
    stack = fault_stack
    stack.supervised = {"worker", "beat"}
    ids = stack.seed_deposits([1_000 + 13 * number for number in range(DEPOSITS)])
    stack.start_worker()
    stack.start_beat()
    # The orders are approved as they reach the stand-in; their webhooks wait until all are
    # approved, then arrive one every 0.15 s: Redis goes down in the middle of them.
    sender = WebhookSender(stack, pace_s=0.15)
    sender.hold.set()
    sender.start()
    try:
        wait_until(
            "every order to reach ZenoPay",
            lambda: len(sender.deliveries) == DEPOSITS,
            timeout=240,
        )
        sender.hold.clear()
        wait_until(
            "a quarter of the webhooks",
            lambda: sender.delivered >= DEPOSITS // 4,
            timeout=60,
            interval=0.05,
        )
        fault_servers.redis.crash()
        at_crash = sender.delivered
        print(f"\nRedis crashed after {at_crash} webhooks", flush=True)
        time.sleep(DOWN_S)
        during = sender.delivered
        fault_servers.redis.start()
        print(
            f"Redis back (empty) after {DOWN_S} s; {during} webhooks delivered by then", flush=True
        )
        assert during > at_crash, "no webhook arrived while Redis was down"
        sender.wait_delivered(DEPOSITS, timeout=180)
        stack.wait_all_minted(DEPOSITS, timeout=240)
    finally:
        sender.stop()
    print(fault_invariants_assert(stack, sender, ids), f"; restarted: {stack.restarts}")
