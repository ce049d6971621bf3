"""The worker SIGKILLed at random moments while deposits flow (issue 16 point 5).

104 deposits go the whole way — created, ZenoPay create, the customer's PIN, ZenoPay's
webhook, the order-status check, the mint batch, the confirmation — while the Celery worker
(the Procfile's command, queues default and mint) is killed with SIGKILL, its whole process
group at once, a random 0.2-2 s after it is ready, over 20 rounds, and started again. Lost
and half-done messages are only timing: beat re-drives every piece of work from its row. A
worker killed between committing a create as ``requested`` and sending it leaves an order
ZenoPay never heard of; once ZenoPay's order-status says "not found" past
``ZENOPAY_CREATE_RESEND_AFTER_S`` (1 s here, floored at twice ``ZENOPAY_TIMEOUT``), beat
re-sends that create once, so every deposit here must still be paid and minted once.

The kill schedule comes from a seed, printed; rerun the same schedule with
``FAULT_SEED=<seed> .venv/bin/python -m pytest tests/faults/test_worker_kill.py``.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.faults import (
    WebhookSender,
    fault_invariants_assert,
    fault_seed,
    fault_wait_settled,
)

pytestmark = pytest.mark.slow

ROUNDS = 20
DEPOSITS = 104


def test_every_deposit_is_minted_exactly_once_when_the_worker_is_killed_at_random_moments(
    fault_stack,
):
    seed, rng = fault_seed()
    print(
        f"\nworker-kill seed {seed}: rerun with FAULT_SEED={seed} .venv/bin/python -m pytest "
        "tests/faults/test_worker_kill.py",
        flush=True,
    )
    stack = fault_stack
    # Amounts all different: an identical deposit within 5 minutes is the same deposit.
    amounts = [1_000 + 7 * number for number in range(DEPOSITS)]
    ids = stack.seed_deposits(amounts[: DEPOSITS // 2])
    later: list[str] = []
    second_wave = threading.Thread(
        target=lambda: later.extend(stack.seed_deposits(amounts[DEPOSITS // 2 :])), daemon=True
    )
    stack.start_beat()
    sender = WebhookSender(stack).start()
    try:
        for number in range(ROUNDS):
            if number == ROUNDS // 3:
                second_wave.start()  # more deposits arrive while the kills go on
            stack.start_worker()
            up = rng.uniform(0.2, 2.0)
            time.sleep(up)
            stack.kill("worker")
            print(f"round {number + 1}: killed after {up:.2f} s; {dict(stack.statuses())}")
        second_wave.join(timeout=120)
        ids += later
        assert len(ids) == DEPOSITS
        stack.start_worker()
        fault_wait_settled(stack, sender, timeout=240)
    finally:
        sender.stop()
    print(fault_invariants_assert(stack, sender, ids))
