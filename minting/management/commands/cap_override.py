import datetime as dt

from django.core.management.base import CommandError

from core.management.base import OperatorCommand
from minting.services.operator import cap_override


class Command(OperatorCommand):
    help = "Override one UTC day's issuance cap (applies at once; audited)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--day", required=True, help="YYYY-MM-DD (UTC)")
        parser.add_argument("--cap", required=True, help="whole shillings")
        parser.add_argument("--reason", required=True)

    def run(self, actor, *, day, cap, reason, **options) -> str:
        try:
            parsed_day = dt.date.fromisoformat(day)
        except ValueError:
            raise CommandError(f"--day must be a date such as 2026-11-23, got {day!r}.") from None
        if not cap.strip().isdigit():
            raise CommandError(f"--cap must be a whole number of shillings, got {cap!r}.")
        issuance = cap_override(day=parsed_day, cap_tzs=int(cap), reason=reason, actor=actor)
        return f"cap for {issuance.day} is now {issuance.cap_override_tzs:,} TZS"
