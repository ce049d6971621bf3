from celery import shared_task

from minting.services import minter_check


@shared_task(name="minting.tasks.check_minter", periodic=True)
def check_minter() -> list[str]:
    result = minter_check()
    return ["chain unavailable"] if result is None else result.problems
