import json

from core.management.base import RefusingCommand
from minting.breaker import rpc_breaker
from minting.chain import ChainError
from minting.selectors import mint_cost_of_day
from minting.services import minter_check
from minting.services.operator import mint_status


class Command(RefusingCommand):
    help = (
        "Queue by status, in-flight nonces, circuit state, today's cap figures, minter "
        "role, gas, the sending switch and today's cost of minting in ETH."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--offline", action="store_true", help="do not read the chain")

    def handle(self, *args, offline=False, **options):
        status = mint_status()
        status["circuit"] = rpc_breaker().state()
        cost = mint_cost_of_day()  # recorded from receipts: no chain read
        if not offline:
            try:
                check = minter_check()
            except ChainError as exc:  # the web boots without RPC; so does this
                check, status["chain"] = None, str(exc)
            if check is not None:
                status.update(
                    minter_role=check.has_minter_role,
                    gas_wei=check.gas_balance_wei,
                    paused=check.paused,
                    mint_with_ref=check.mint_with_ref,
                )
        if options.get("json"):
            status["mint_cost_today"] = cost.as_dict()
            self.stdout.write(json.dumps(status, indent=2, default=str))
            return
        status["mint_cost_today"] = str(cost)
        for key, value in status.items():
            self.stdout.write(f"{key:>18}: {value}")
