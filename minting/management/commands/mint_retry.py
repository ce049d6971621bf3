from core.exceptions import ServiceError
from core.management.base import OperatorCommand, command_refusals
from minting.chain import ChainError
from minting.rpc import mint_client
from minting.services.operator import mint_retry


class Command(OperatorCommand):
    help = (
        "Retry failed mints, each only with the proof that no earlier attempt can land. One "
        "line per deposit (queued, minted, nothing to do, or why it was refused); exit 1 if "
        "any was refused."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_ids", nargs="+")

    def run(self, actor, *, deposit_ids, **options) -> str:
        client = mint_client()
        refused = 0
        for deposit_id in deposit_ids:
            try:
                outcome = mint_retry(client=client, deposit_id=deposit_id, actor=actor)
            except ChainError:
                raise  # the chain is down for every deposit: the command's one sentence
            except command_refusals() as exc:
                refused += 1
                outcome = f"refused: {exc}"
            # Written at once: a later chain error must not hide what was already queued.
            self.stdout.write(f"{deposit_id}: {outcome}")
        if refused:
            raise ServiceError(
                f"{refused} of {len(deposit_ids)} deposit(s) could not be retried (see above)."
            )
        return ""
