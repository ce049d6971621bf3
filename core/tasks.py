from celery import shared_task


@shared_task(name="core.tasks.ping")
def ping() -> str:
    """A round trip through the broker; its heartbeat row proves a worker ran it."""
    return "pong"
