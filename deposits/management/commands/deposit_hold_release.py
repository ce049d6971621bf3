from core.management.base import OperatorCommand
from deposits.services.operator import RESOLUTIONS, deposit_hold_release_request


class Command(OperatorCommand):
    help = (
        "Maker: ask to release a held deposit (clear; cancel_and_orphan for an amount "
        "mismatch; refund). A different person approves with dual_control_approve."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--resolution", required=True, choices=RESOLUTIONS)
        parser.add_argument("--evidence", default="")

    def run(self, actor, *, deposit_id, resolution, evidence, **options) -> str:
        request = deposit_hold_release_request(
            deposit_id=deposit_id, resolution=resolution, evidence=evidence, maker=actor
        )
        return str(request.pk)
