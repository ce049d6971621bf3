from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from core.env import read_private_key
from core.envfile import env_file_update
from core.management.base import RefusingCommand
from minting.chain import account_address
from minting.services import DeployPlan, ntzs_deploy


class Command(RefusingCommand):
    help = (
        "Deploy the NTZS token to BASE_SEPOLIA_RPC_URL with the key in DEPLOYER_PRIVATE_KEY, "
        "grant MINTER_ROLE to the minter (and SAFE_ADDRESS), and record the deploy block. "
        "Before sending anything it checks that the deployer holds the most the deployment "
        "can cost (20 % over the node's gas estimate at twice the base fee plus the tip, and "
        "twice the L1 data fee); when short it exits 1 saying how much ETH is needed and how "
        "much the deployer has, and sends nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="redeploy when the configured address has no code"
        )
        parser.add_argument(
            "--write-env",
            metavar="PATH",
            help="write the new address and deploy block to this env file",
        )

    def handle(self, *args, **options):
        try:
            deployer_key = read_private_key("DEPLOYER_PRIVATE_KEY")
        except Exception as exc:  # ImproperlyConfigured carries the sentence
            raise CommandError(str(exc)) from None
        if not deployer_key:
            raise CommandError("DEPLOYER_PRIVATE_KEY is not set: the deploy needs a funded key.")
        minter = account_address(settings.MINTER_PRIVATE_KEY) if settings.MINTER_PRIVATE_KEY else ""
        plan = DeployPlan(
            rpc_url=settings.BASE_SEPOLIA_RPC_URL,
            chain_id=settings.CHAIN_ID,
            deployer_key=deployer_key,
            minter_address=minter,
            safe_address=settings.SAFE_ADDRESS,
            configured_address=settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA,
            allow_redeploy=settings.PROFILE == "local" or options["force"],
        )
        deployment = ntzs_deploy(plan)  # a ChainError is the command's refusal (RefusingCommand)
        if options["write_env"]:
            env_file_update(
                Path(options["write_env"]),
                {
                    "NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA": deployment.contract_address,
                    "NTZS_DEPLOY_BLOCK": str(deployment.deploy_block),
                },
            )
        self.stdout.write(f"NTZS deployed at {deployment.contract_address}")
        self.stdout.write(
            f"deploy block {deployment.deploy_block} hash {deployment.deploy_block_hash}"
        )
        self.stdout.write(
            f"MINTER_ROLE granted to: {minter or '(no minter configured)'}"
            + (f", {settings.SAFE_ADDRESS}" if settings.SAFE_ADDRESS else "")
        )
