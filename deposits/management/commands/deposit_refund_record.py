from core.management.base import OperatorCommand
from deposits.services.operator import deposit_refund_record_request


class Command(OperatorCommand):
    help = (
        "Maker: record an off-system refund of a submitted, cancelled or rejected deposit. "
        "A different person approves with dual_control_approve."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--evidence", required=True)

    def run(self, actor, *, deposit_id, evidence, **options) -> str:
        request = deposit_refund_record_request(
            deposit_id=deposit_id, evidence=evidence, maker=actor
        )
        return str(request.pk)
