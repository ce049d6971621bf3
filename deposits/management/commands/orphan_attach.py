from core.management.base import OperatorCommand
from deposits.services.operator import orphan_attach_request


class Command(OperatorCommand):
    help = (
        "Maker: ask to attach an orphan payment to a submitted deposit of the same amount "
        "and phone. A different person approves with dual_control_approve."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("orphan_id")
        parser.add_argument("deposit_id")
        parser.add_argument("--evidence", default="")

    def run(self, actor, *, orphan_id, deposit_id, evidence, **options) -> str:
        request = orphan_attach_request(
            orphan_id=orphan_id, deposit_id=deposit_id, evidence=evidence, maker=actor
        )
        return str(request.pk)
