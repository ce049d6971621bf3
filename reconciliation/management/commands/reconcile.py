"""``manage.py reconcile``: take a supply snapshot now and print the equation with its
figures (DESIGN §8). Exits 1 on a discrepancy or when the chain could not be read, so cron
or CI can run it; 0 when ``On-Chain Supply == DB Minted + Reconciled`` holds."""

from django.core.management.base import CommandError

from core.management.base import RefusingCommand
from reconciliation.services.snapshots import equation_text, supply_snapshot_take


class Command(RefusingCommand):
    help = "Take a supply snapshot and print the reconciliation equation (exit 1 if off)."

    def handle(self, *args, **options):
        snapshot = supply_snapshot_take()
        self.stdout.write(equation_text(snapshot))
        if snapshot.discrepancy_units is None:
            raise CommandError(
                "The on-chain supply could not be read, so nothing is proven: "
                f"{snapshot.unavailable_reason}"
            )
        if snapshot.discrepancy_units != 0:
            raise CommandError(
                f"Supply discrepancy of {int(snapshot.discrepancy_units)} base units at block "
                f"{snapshot.block_number}: explain it (a reconciliation entry) or investigate."
            )
