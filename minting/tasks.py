"""Thin Celery adapters over minting services. Safe to run twice at once: batches are
serialised by the signer row lock (claims use SKIP LOCKED), and confirmations lock the mint
rows they record and skip what another run already recorded."""

from celery import shared_task

from minting import signals  # noqa: F401 - worker start/stop log lines
from minting.chain import ChainUnavailable
from minting.services import minter_check
from minting.services.runner import confirm_run, mint_jobs_run
from minting.services.token_admin import token_admin_execute as _token_admin_execute
from minting.services.token_admin import token_admin_redrive as _token_admin_redrive


@shared_task(name="minting.tasks.check_minter", periodic=True)
def check_minter() -> list[str]:
    result = minter_check()
    return ["chain unavailable"] if result is None else result.problems


@shared_task(name="minting.tasks.process_mint_jobs", periodic=True)
def process_mint_jobs() -> dict:
    return mint_jobs_run()


@shared_task(name="minting.tasks.confirm_mints", periodic=True)
def confirm_mints() -> dict:
    return confirm_run()


# Retried while the chain cannot be read or the receipt is not there yet ("sent"): the
# AdminAction rows, not the message, say what happened, and token_admin_redrive finishes an
# action whose message was lost or whose retries ran out. On the default queue (settings'
# CELERY_TASK_ROUTES): it waits for a receipt and must not hold a mint worker's slot.
@shared_task(name="minting.tasks.token_admin_execute", bind=True, max_retries=20)
def token_admin_execute(self, action_id: str) -> str:
    try:
        outcome = _token_admin_execute(action_id=action_id)
    except ChainUnavailable as exc:
        raise self.retry(countdown=30, exc=exc) from None
    if outcome == "sent":
        raise self.retry(countdown=30)
    return outcome


@shared_task(name="minting.tasks.token_admin_redrive", periodic=True)
def token_admin_redrive() -> dict:
    return _token_admin_redrive()
