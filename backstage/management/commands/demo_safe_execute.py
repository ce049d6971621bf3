from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backstage.demo import demo_refusal
from core.env import read_private_key
from core.exceptions import ServiceError
from core.management.base import actor_from_email
from minting.services.safe import safe_batch_file


class Command(BaseCommand):
    help = (
        "Local chain only (local or test profile): plays the Safe owners for a Safe-lane "
        "deposit — exports the exact call (as safe_batch_file does) and executes it "
        "through the local 1-of-1 Safe with SAFE_OWNER_PRIVATE_KEY. Then record it: "
        "safe_mint_record DEPOSIT TX."
    )

    def add_arguments(self, parser):
        parser.add_argument("deposit_id")
        parser.add_argument("--actor", required=True, help="the operator exporting the call")

    def handle(self, *args, deposit_id, actor, **options):
        if refusal := demo_refusal("demo_safe_execute"):
            raise CommandError(refusal)
        owner_key = read_private_key("SAFE_OWNER_PRIVATE_KEY")
        if not (owner_key and settings.SAFE_ADDRESS):
            raise CommandError(
                "SAFE_ADDRESS and SAFE_OWNER_PRIVATE_KEY must be set "
                "(make dev writes them to var/local.env)."
            )
        try:
            export = safe_batch_file(deposit_ids=[deposit_id], actor=actor_from_email(actor))
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        from minting.safe_local import safe_exec_call

        for call in export["calls"]:
            tx_hash = safe_exec_call(
                settings.BASE_SEPOLIA_RPC_URL,
                settings.SAFE_ADDRESS,
                owner_key,
                call["to"],
                bytes.fromhex(call["data"][2:]),
            )
            self.stdout.write(f"executed through the Safe: {tx_hash}")
            self.stdout.write(
                f"now: python manage.py safe_mint_record {deposit_id} {tx_hash} --actor {actor}"
            )
