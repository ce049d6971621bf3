"""The Celery beat schedule, declared in code (DESIGN §2).

Every periodic task the code defines (``@shared_task(periodic=True)``) must appear here; a
test holds the two lists together. ``expires`` equals the interval: a message that waited a
whole interval is dropped, because the next one is already on its way and the database, not
the message, says what work is due.
"""

from __future__ import annotations

DEFAULT_INTERVALS_S: dict[str, int] = {
    "deposits.tasks.initiate_payments": 30,
    "deposits.tasks.poll_zenopay": 30,
    "deposits.tasks.expire_stale_deposits": 3600,
    "minting.tasks.check_minter": 600,
    "minting.tasks.process_mint_jobs": 5,
    "minting.tasks.confirm_mints": 5,
    "minting.tasks.token_admin_redrive": 60,
    "reconciliation.tasks.index_chain": 15,
    "reconciliation.tasks.snapshot_supply": 300,
    "reconciliation.tasks.alerts_check": 60,
}


def beat_schedule(intervals_s: dict[str, int]) -> dict[str, dict]:
    schedule = {}
    for task, default in DEFAULT_INTERVALS_S.items():
        every = intervals_s.get(task, default)
        schedule[task] = {"task": task, "schedule": every, "options": {"expires": every}}
    return schedule
