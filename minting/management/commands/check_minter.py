from django.core.management.base import CommandError

from core.management.base import RefusingCommand
from minting.services import minter_check


class Command(RefusingCommand):
    help = "Check chain id, token code, MINTER_ROLE, minter gas and paused; open/resolve alerts."

    def handle(self, *args, **options):
        result = minter_check()
        if result is None:
            raise CommandError("The chain or the token could not be checked; see the open alert.")
        self.stdout.write(f"chain {result.chain_id} token {result.contract_address}")
        self.stdout.write(
            f"minter {result.minter_address} MINTER_ROLE={result.has_minter_role} "
            f"gas={result.gas_balance_wei} wei paused={result.paused} "
            f"mintForDeposit={result.mint_with_ref}"
        )
        if result.problems:
            raise CommandError("; ".join(result.problems).capitalize() + ".")
        self.stdout.write("OK")
