from django.core.management.base import CommandError

from core.management.base import RefusingCommand
from reconciliation.services.matching import index_chain_run


class Command(RefusingCommand):
    help = (
        "Index the token's Transfer and role logs up to the safe head (from NTZS_DEPLOY_BLOCK, "
        "else the recorded deployment's block), then match the mint logs to their claims."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from-block",
            type=int,
            default=None,
            help="index again from this block (rows at and above it are read again)",
        )

    def handle(self, *args, **options):
        from_block = options["from_block"]
        if from_block is not None and from_block < 0:
            raise CommandError(f"--from-block must be a block number ≥ 0, not {from_block}.")
        result = index_chain_run(from_block=from_block)
        if "delayed" in result or "waiting" in result:
            reason = result.get("reason") or result.get("waiting") or "the chain is unavailable"
            raise CommandError(f"The chain was not indexed: {reason}")
        self.stdout.write(str(result))
