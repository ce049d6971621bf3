"""PostgreSQL crashed and started again in the middle of a mint batch (issue 16 point 5).

The fault suite's own server (never the suite's shared one) gets an immediate shutdown —
every connection cut, no checkpoint, crash recovery at the next start — while a batch of
mints is signed and in flight, and comes back 3 s later on the same port. Web, worker and beat
keep running through it; ZenoPay's webhooks that fail meanwhile are retried, as ZenoPay does.
"""

from __future__ import annotations

import time

import pytest

from tests.support.faults import WebhookSender, fault_invariants_assert, wait_until

pytestmark = pytest.mark.slow

DEPOSITS = 40
DOWN_S = 3


def test_every_deposit_is_minted_exactly_once_when_postgres_restarts_mid_batch(
    fault_stack, fault_servers
):
    stack = fault_stack
    ids = stack.seed_deposits([1_000 + 11 * number for number in range(DEPOSITS)])
    stack.start_worker()
    stack.start_beat()
    sender = WebhookSender(stack).start()
    try:

        def batch_in_flight():
            counts = stack.statuses()
            return counts if counts.get("mint_processing") else None

        at_crash = wait_until("a mint batch in flight", batch_in_flight, timeout=240, interval=0.05)
        fault_servers.postgres.crash()
        print(f"\nPostgreSQL crashed with the deposits at {dict(at_crash)}", flush=True)
        time.sleep(DOWN_S)
        fault_servers.postgres.start()
        print(f"PostgreSQL back after {DOWN_S} s: {dict(stack.statuses())}", flush=True)
        sender.wait_delivered(DEPOSITS, timeout=180)
        stack.wait_all_minted(DEPOSITS, timeout=180)
    finally:
        sender.stop()
    assert "database system was interrupted" in fault_servers.postgres.log.read_text() or (
        "not properly shut down" in fault_servers.postgres.log.read_text()
    ), "the restart was not a crash recovery"
    print(fault_invariants_assert(stack, sender, ids))
