from core.management.base import OperatorCommand
from minting.services.lanes import mint_route_to_worker


class Command(OperatorCommand):
    help = (
        "Super admin: send a mint_requires_safe deposit back to the worker lane (refused "
        "while an exported Safe payload can still mint it)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("--reason", required=True)

    def run(self, actor, *, deposit_id, reason, **options) -> str:
        mint_route_to_worker(deposit_id=deposit_id, actor=actor, reason=reason)
        return f"Deposit {deposit_id} is back in the worker lane (mint_pending)."
