from core.management.base import OperatorCommand
from deposits.services.operator import deposit_confirm_manual_request


class Command(OperatorCommand):
    help = (
        "Maker: ask for a manual ZenoPay confirmation with what the ZenoPay dashboard "
        "shows. A different person approves with dual_control_approve, which queries "
        "order-status once more."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--transid", required=True)
        parser.add_argument("--amount", required=True, help="whole shillings")
        parser.add_argument("--phone", default="")
        parser.add_argument("--evidence", required=True)

    def run(self, actor, *, deposit_id, transid, amount, phone, evidence, **options) -> str:
        request = deposit_confirm_manual_request(
            deposit_id=deposit_id,
            transid=transid,
            amount_tzs=amount,
            phone=phone,
            evidence=evidence,
            maker=actor,
        )
        return str(request.pk)
