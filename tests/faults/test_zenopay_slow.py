"""ZenoPay answering slower than ZENOPAY_TIMEOUT, then recovering (issue 16 point 5).

A proxy in front of the stand-in holds every answer 4 s while ``ZENOPAY_TIMEOUT`` is 2 s: each
create reaches ZenoPay (the order is recorded, the customer is prompted and pays) but its
answer comes too late, so the deposit's initiation is "uncertain" and it is polled; the
order-status checks the webhooks ask for time out too. Then ZenoPay answers in time again,
and the polling finds every payment: nothing cancelled, nothing minted twice.
"""

from __future__ import annotations

import time

import pytest

from tests.support.faults import (
    SlowProxy,
    WebhookSender,
    fault_invariants_assert,
    wait_until,
)

pytestmark = pytest.mark.slow

DEPOSITS = 20
SLOW_FOR_S = 12


@pytest.mark.parametrize("fault_stack", [{"ZENOPAY_TIMEOUT": "2"}], indirect=True)
def test_every_deposit_is_minted_once_after_zenopay_answers_slowly_then_recovers(fault_stack):
    stack = fault_stack
    with SlowProxy(stack.standin_port, delay_s=4) as proxy:
        proxy.slow.set()
        stack.env["ZENOPAY_BASE_URL"] = f"{proxy.url}/api"
        stack.start_worker()
        stack.start_beat()
        ids = stack.seed_deposits([1_000 + 17 * number for number in range(DEPOSITS)])
        sender = WebhookSender(stack).start()
        try:
            wait_until(
                "the creates to reach ZenoPay", lambda: len(sender.deliveries) >= 4, timeout=120
            )
            slow_since = time.monotonic()
            time.sleep(SLOW_FOR_S)
            uncertain = stack.sql(
                "SELECT count(*) FROM deposits_depositrequest WHERE initiation = 'uncertain'"
            )[0][0]
            timed_out = stack.log_text("worker").count("did not answer within 2 s")
            proxy.slow.clear()
            print(
                f"\nZenoPay slow for {time.monotonic() - slow_since:.0f} s: {uncertain} creates "
                f"uncertain, {timed_out} calls timed out; {dict(stack.statuses())}",
                flush=True,
            )
            assert uncertain >= 1 and timed_out >= 1, "ZenoPay was never too slow"
            sender.wait_delivered(DEPOSITS, timeout=240)
            stack.wait_all_minted(DEPOSITS, timeout=240)
        finally:
            sender.stop()
    print(fault_invariants_assert(stack, sender, ids))
