"""Worker lifecycle log lines the runbook greps for: ``Mint worker started`` (minter, chain
id, contract) with a recovery pass at start, and ``Shutting down`` on SIGTERM."""

from __future__ import annotations

import logging

from celery import signals
from django.conf import settings

from core.services import task_enqueue_on_commit
from minting.chain import account_address

logger = logging.getLogger("worker")


@signals.worker_ready.connect
def _mint_worker_started(sender=None, **_kwargs) -> None:
    minter = (
        account_address(settings.MINTER_PRIVATE_KEY)
        if settings.MINTER_PRIVATE_KEY
        else "(no minter key)"
    )
    logger.info(
        "Mint worker started minter=%s chain_id=%s contract=%s",
        minter,
        settings.CHAIN_ID,
        settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA or "(not set)",
    )
    # Recovery at start (DESIGN §7.4): signed-but-unsent and dropped attempts are sent again.
    task_enqueue_on_commit("minting.tasks.confirm_mints")


@signals.worker_shutting_down.connect
def _shutting_down(sig=None, how=None, **_kwargs) -> None:
    logger.warning(
        "Shutting down (%s, %s): the current task finishes; unacknowledged "
        "messages are redelivered and the database says what is due",
        sig,
        how,
    )
