from core.management.base import OperatorCommand
from minting.services.lanes import mint_refund_record


class Command(OperatorCommand):
    help = (
        "Maker: record an off-system refund of a mint_pending, mint_failed or "
        "mint_requires_safe deposit. A different person approves with dual_control_approve."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--evidence", required=True)

    def run(self, actor, *, deposit_id, evidence, **options) -> str:
        request = mint_refund_record(deposit_id=deposit_id, evidence=evidence, maker=actor)
        return (
            f"Refund request {request.pk} is waiting for a checker: "
            f"python manage.py dual_control_approve {request.pk} --actor EMAIL"
        )
