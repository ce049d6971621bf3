from deposits.management.commands._base import OperatorCommand
from minting.services.operator import mint_retry
from minting.services.runner import mint_client


class Command(OperatorCommand):
    help = "Retry failed mints, each only with the proof that no earlier attempt can land."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_ids", nargs="+")

    def run(self, actor, *, deposit_ids, **options) -> str:
        client = mint_client()
        lines = [
            f"{d}: {mint_retry(client=client, deposit_id=d, actor=actor)}" for d in deposit_ids
        ]
        return "\n".join(lines)
