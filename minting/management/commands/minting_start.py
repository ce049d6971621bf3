from deposits.management.commands._base import OperatorCommand
from minting.chain import account_address
from minting.services.operator import minting_sending_set
from minting.services.runner import mint_client


class Command(OperatorCommand):
    help = "Start minting: the sending switch of the minter key (audited)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--reason", required=True)

    def run(self, actor, *, reason, **options) -> str:
        from django.conf import settings

        client = mint_client()
        pending = client.w3.eth.get_transaction_count(
            account_address(settings.MINTER_PRIVATE_KEY), "pending"
        )
        signer = minting_sending_set(
            enabled=True, reason=reason, actor=actor, chain_pending_nonce=pending
        )
        return f"sending {'enabled' if signer.sending_enabled else 'disabled'} for {signer.address}"
