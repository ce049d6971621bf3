from core.management.base import OperatorCommand
from deposits.services.operator import orphan_dismiss


class Command(OperatorCommand):
    help = "Dismiss an orphan payment with a note (e.g. refunded outside the system)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("orphan_id")
        parser.add_argument("--note", required=True)

    def run(self, actor, *, orphan_id, note, **options) -> str:
        orphan_dismiss(orphan_id=orphan_id, actor=actor, note=note)
        return f"Orphan payment {orphan_id} dismissed."
