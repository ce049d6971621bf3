from core.management.base import RefusingCommand
from minting.services.runner import confirm_run


class Command(RefusingCommand):
    help = "Read receipts, record confirmed mints, recover unsent or dropped transactions."

    def handle(self, *args, **options):
        self.stdout.write(str(confirm_run()))
