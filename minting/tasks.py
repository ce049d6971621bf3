"""Thin Celery adapters over minting services. Safe to run twice at once: batches are
serialised by the signer row lock (claims use SKIP LOCKED), and confirmations lock the mint
rows they record and skip what another run already recorded."""

from celery import shared_task

from minting import signals  # noqa: F401 - worker start/stop log lines
from minting.services import minter_check
from minting.services.runner import confirm_run, mint_jobs_run


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
