import time

from celery import current_app
from django.core.management.base import BaseCommand, CommandError

from core.clock import now
from core.models import TaskHeartbeat


class Command(BaseCommand):
    help = "Send core.tasks.ping through the broker and wait for a worker's heartbeat."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=int, default=30)

    def handle(self, *args, timeout, **options):
        sent_at = now()
        current_app.send_task("core.tasks.ping")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if TaskHeartbeat.objects.filter(
                task_name="core.tasks.ping", last_finished__gte=sent_at
            ).exists():
                self.stdout.write("a worker ran core.tasks.ping and recorded its heartbeat")
                return
            time.sleep(0.5)
        raise CommandError(
            f"No worker ran core.tasks.ping within {timeout} s: is the worker "
            "running and connected to the same broker?"
        )
