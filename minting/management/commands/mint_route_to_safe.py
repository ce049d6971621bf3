from core.management.base import OperatorCommand
from minting.services.lanes import mint_route_to_safe


class Command(OperatorCommand):
    help = "Super admin: route a mint_pending or mint_failed deposit to the Safe lane."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--reason", required=True)

    def run(self, actor, *, deposit_id, reason, **options) -> str:
        mint_route_to_safe(deposit_id=deposit_id, actor=actor, reason=reason)
        return f"Deposit {deposit_id} now requires a Safe mint."
