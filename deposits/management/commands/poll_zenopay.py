from django.core.management.base import BaseCommand, CommandError

from core.exceptions import NotFound
from deposits.selectors import deposit_get
from deposits.services.payments import payments_poll


class Command(BaseCommand):
    help = "Ask ZenoPay about due deposits now (or one deposit with --deposit)."

    def add_arguments(self, parser):
        parser.add_argument("--deposit", help="check this deposit only (still debounced 10 s)")
        parser.add_argument("--limit", type=int, default=50)

    def handle(self, *args, deposit=None, limit, **options):
        deposit_id = None
        if deposit:
            try:
                deposit_id = deposit_get(deposit_id=deposit).pk
            except NotFound as exc:
                raise CommandError(str(exc)) from None
        counts = payments_poll(limit=limit, deposit_id=deposit_id)
        summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing due"
        self.stdout.write(f"polled ZenoPay: {summary}")
