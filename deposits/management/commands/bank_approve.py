from core.management.base import OperatorCommand
from deposits.selectors import deposit_get
from deposits.services.bank import deposit_bank_approve


class Command(OperatorCommand):
    help = (
        "Bank approval of a bank-transfer deposit: fiat received, with the amount and the "
        "bank's reference (bank_admin of that bank). Another amount than the deposit's "
        "holds it (amount mismatch) for a four-eyes hold release."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--bank-reference", required=True)
        parser.add_argument("--amount", required=True, help="whole shillings the bank received")

    def run(self, actor, *, deposit_id, bank_reference, amount, **options) -> str:
        status = deposit_bank_approve(
            deposit_id=deposit_id,
            actor=actor,
            bank_reference=bank_reference,
            amount_received_tzs=amount,
        )
        if status:
            return f"Bank approval recorded for {deposit_id}; the deposit is now {status}."
        deposit = deposit_get(deposit_id=deposit_id)
        if deposit.hold_reason:
            return (
                f"Bank approval recorded for {deposit_id}; the deposit is on hold "
                f"({deposit.hold_reason}): release it with deposit_hold_release."
            )
        return f"Bank approval recorded for {deposit_id}; waiting for platform approval."
