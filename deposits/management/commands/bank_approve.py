from deposits.management.commands._base import OperatorCommand
from deposits.services.bank import deposit_bank_approve


class Command(OperatorCommand):
    help = "Bank approval of a bank-transfer deposit: fiat received (bank_admin of that bank)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--bank-reference", required=True)

    def run(self, actor, *, deposit_id, bank_reference, **options) -> str:
        status = deposit_bank_approve(deposit_id=deposit_id, actor=actor,
                                      bank_reference=bank_reference)
        return f"Bank approval recorded for {deposit_id}" + (
            f"; the deposit is now {status}." if status else "; waiting for platform approval.")
