from django.core.management.base import BaseCommand

from backstage.health import queue_counts


class Command(BaseCommand):
    help = (
        "Counts of mint_pending, mint_processing, mint_failed, mint_requires_safe, held "
        "deposits, and the broker's mint queue depth."
    )

    def handle(self, *args, **options):
        for name, value in queue_counts().items():
            self.stdout.write(f"{name:>20}: {value}")
