from core.management.base import OperatorCommand
from deposits.services.bank import deposit_bank_reject


class Command(OperatorCommand):
    help = "Reject a bank-transfer deposit at the bank review, with a reason."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--reason", required=True)

    def run(self, actor, *, deposit_id, reason, **options) -> str:
        deposit_bank_reject(deposit_id=deposit_id, actor=actor, reason=reason)
        return f"Deposit {deposit_id} rejected."
