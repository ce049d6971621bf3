from core.management.base import OperatorCommand
from deposits.services.bank import deposit_platform_approve


class Command(OperatorCommand):
    help = "Platform approval of a bank-transfer deposit (platform_compliance)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")

    def run(self, actor, *, deposit_id, **options) -> str:
        status = deposit_platform_approve(deposit_id=deposit_id, actor=actor)
        return f"Platform approval recorded for {deposit_id}" + (
            f"; the deposit is now {status}." if status else "; waiting for the bank approval."
        )
