import time

from core.management.base import RefusingCommand
from minting.services.runner import mint_jobs_run


class Command(RefusingCommand):
    help = "Claim, sign and send mint batches (what the worker's task does), once or in a loop."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one batch, then exit")
        parser.add_argument("--interval", type=float, default=2.0)

    def handle(self, *args, once, interval, **options):
        while True:
            self.stdout.write(str(mint_jobs_run()))
            if once:
                return
            time.sleep(interval)
