from core.management.base import OperatorCommand
from minting.services.operator import minting_sending_set


class Command(OperatorCommand):
    help = "Stop minting: the sending switch of the minter key (audited)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--reason", required=True)

    def run(self, actor, *, reason, **options) -> str:
        signer = minting_sending_set(enabled=False, reason=reason, actor=actor)
        return f"sending {'enabled' if signer.sending_enabled else 'disabled'} for {signer.address}"
