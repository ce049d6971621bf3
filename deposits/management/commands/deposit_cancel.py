from core.management.base import OperatorCommand
from deposits.services.operator import deposit_cancel_by_operator


class Command(OperatorCommand):
    help = "Cancel a submitted deposit that is not on hold, with a reason."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--reason", required=True)

    def run(self, actor, *, deposit_id, reason, **options) -> str:
        deposit_cancel_by_operator(deposit_id=deposit_id, actor=actor, reason=reason)
        return f"Deposit {deposit_id} cancelled."
