"""The sandbox's webhook goes out from a task, as ZenoPay's does: never inline."""

from celery import shared_task

from deposits.sandbox.services import sandbox_webhook_fire


@shared_task(name="deposits.sandbox.tasks.sandbox_fire_webhook")
def sandbox_fire_webhook(order_id: str) -> int | None:
    return sandbox_webhook_fire(order_id=order_id)
