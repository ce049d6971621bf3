"""Maker: ask for a reconciliation entry (recovery without Backstage). A different super
admin approves it with ``dual_control_approve``; four eyes on the command line is only as
strong as shell access to the servers (docs/runbook.md)."""

from django.core.management.base import CommandError

from core.management.base import OperatorCommand
from reconciliation.models import ReconciliationEntry
from reconciliation.services.entries import reconciliation_entry_request


def _whole(value: str) -> int:
    """A signed whole number of base units, as typed (never through a float)."""
    text = value.strip().replace("_", "")
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit():
        raise CommandError(f"{value!r} is not a whole number of base units (10**18 per nTZS).")
    return int(text)


class Command(OperatorCommand):
    help = (
        "Maker: request a reconciliation entry in signed base units (burn and wipe negative). "
        "A different super admin approves with dual_control_approve."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--type", required=True, choices=ReconciliationEntry.EntryType.values)
        parser.add_argument("--amount-units", required=True, help="signed base units")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--tx-hash", default="")
        parser.add_argument("--log-index", type=int, default=None)
        parser.add_argument("--to-address", default="")
        parser.add_argument("--block", type=int, default=None, help="block the entry holds at")
        parser.add_argument("--evidence", default="", help="kept as the entry's notes")

    def run(self, actor, **options) -> str:
        request = reconciliation_entry_request(
            maker=actor,
            entry_type=options["type"],
            amount_units=_whole(options["amount_units"]),
            reason=options["reason"],
            tx_hash=options["tx_hash"],
            log_index=options["log_index"],
            to_address=options["to_address"],
            block_number=options["block"],
            evidence=options["evidence"],
        )
        return (
            f"Reconciliation entry request {request.pk} is waiting for a checker: "
            f"python manage.py dual_control_approve {request.pk} --actor EMAIL"
        )
