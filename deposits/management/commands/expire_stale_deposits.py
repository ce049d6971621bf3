from django.core.management.base import BaseCommand

from deposits.services.payments import deposits_expire_stale


class Command(BaseCommand):
    help = "Cancel ZenoPay deposits unpaid after 72 hours (one last status check each first)."

    def handle(self, *args, **options):
        self.stdout.write(f"expired {deposits_expire_stale()} deposit(s)")
