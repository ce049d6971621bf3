"""Thin Celery adapters over deposits.services.payments. Each is safe to run twice at once:
the services compare-and-set, and the database says what work is due (DESIGN §2)."""

from celery import shared_task

from deposits.services.payments import (
    deposit_check,
    deposits_expire_stale,
    payment_initiate,
    payments_initiate_due,
    payments_poll,
)


@shared_task(name="deposits.tasks.initiate_payment")
def initiate_payment(deposit_id: str) -> str:
    return payment_initiate(deposit_id=deposit_id)


@shared_task(name="deposits.tasks.initiate_payments", periodic=True)
def initiate_payments() -> int:
    # Pending creates re-driven, and creates that never reached ZenoPay re-sent once.
    return payments_initiate_due()


@shared_task(name="deposits.tasks.check_deposit")
def check_deposit(
    deposit_id: str, source: str = "webhook", actor_id: str | None = None, claimed: bool = False
) -> str:
    # The defaults are what messages queued before "check again" named its source carry.
    return deposit_check(deposit_id=deposit_id, source=source, actor_id=actor_id, claimed=claimed)


@shared_task(name="deposits.tasks.poll_zenopay", periodic=True)
def poll_zenopay() -> dict:
    return payments_poll()


@shared_task(name="deposits.tasks.expire_stale_deposits", periodic=True)
def expire_stale_deposits() -> int:
    return deposits_expire_stale()
