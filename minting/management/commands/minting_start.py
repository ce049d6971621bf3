from django.conf import settings

from core.management.base import OperatorCommand
from minting.chain import account_address
from minting.rpc import mint_client
from minting.services.operator import minting_sending_set


class Command(OperatorCommand):
    help = (
        "Start minting: the sending switch of the minter key (audited). Resyncs the nonce "
        "ledger from the chain, and is refused (exit 1, nothing changed) while any mint "
        "transaction is in flight; --keep-ledger starts without the resync."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--reason", required=True)
        parser.add_argument(
            "--keep-ledger",
            action="store_true",
            help="start sending with the nonce ledger as it is (no resync from the chain)",
        )

    def run(self, actor, *, reason, keep_ledger=False, **options) -> str:
        pending = None
        if not keep_ledger:
            pending = mint_client().w3.eth.get_transaction_count(
                account_address(settings.MINTER_PRIVATE_KEY), "pending"
            )
        signer = minting_sending_set(
            enabled=True, reason=reason, actor=actor, chain_pending_nonce=pending
        )
        ledger = (
            "nonce ledger kept"
            if keep_ledger
            else f"nonce ledger resynced from the chain (next nonce {signer.next_nonce})"
        )
        state = "enabled" if signer.sending_enabled else "disabled"
        return f"sending {state} for {signer.address}; {ledger}"
