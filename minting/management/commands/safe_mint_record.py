from django.core.management.base import CommandError

from core.management.base import OperatorCommand
from minting.services.lanes import safe_nonce_consumed_record
from minting.services.safe import safe_mint_record


class Command(OperatorCommand):
    help = (
        "Record the hash of an executed Safe transaction that minted a mint_requires_safe "
        "deposit. With --nonce-consumed (maker, four eyes): record instead a Safe "
        "transaction that consumed the exported proposal's nonce and minted nothing."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_id")
        parser.add_argument("tx_hash")
        parser.add_argument("--nonce-consumed", action="store_true")
        parser.add_argument("--evidence", default="")
        parser.add_argument(
            "--proposal-nonce",
            type=int,
            default=None,
            help="the proposal's Safe nonce, when its export did not record it",
        )

    def run(
        self, actor, *, deposit_id, tx_hash, nonce_consumed, evidence, proposal_nonce, **options
    ) -> str:
        if nonce_consumed:
            request = safe_nonce_consumed_record(
                deposit_id=deposit_id,
                tx_hash=tx_hash,
                evidence=evidence,
                maker=actor,
                proposal_nonce=proposal_nonce,
            )
            return (
                f"Request {request.pk} (Safe nonce {request.params['safe_nonce']} consumed) "
                f"is waiting for a checker: python manage.py dual_control_approve "
                f"{request.pk} --actor EMAIL"
            )
        if evidence or proposal_nonce is not None:
            raise CommandError("--evidence and --proposal-nonce go with --nonce-consumed.")
        outcome = safe_mint_record(deposit_id=deposit_id, tx_hash=tx_hash, actor=actor)
        if outcome == "minted":
            return f"Deposit {deposit_id} is minted by Safe transaction {tx_hash}."
        return (
            f"Safe transaction {tx_hash} is valid but not yet deep enough; confirm_mints "
            f"records deposit {deposit_id} once it has its confirmations."
        )
