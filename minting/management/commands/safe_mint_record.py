from deposits.management.commands._base import OperatorCommand
from minting.services.safe import safe_mint_record


class Command(OperatorCommand):
    help = "Record the hash of an executed Safe transaction that minted a mint_requires_safe deposit."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("tx_hash")

    def run(self, actor, *, deposit_id, tx_hash, **options) -> str:
        outcome = safe_mint_record(deposit_id=deposit_id, tx_hash=tx_hash, actor=actor)
        if outcome == "minted":
            return f"Deposit {deposit_id} is minted by Safe transaction {tx_hash}."
        return (f"Safe transaction {tx_hash} is valid but not yet deep enough; confirm_mints "
                f"records deposit {deposit_id} once it has its confirmations.")
