import json
from pathlib import Path

from django.core.management.base import CommandError

from core.management.base import OperatorCommand
from minting.services.lanes import safe_void_payload_export
from minting.services.safe import safe_batch_file


class Command(OperatorCommand):
    help = (
        "Show the exact Safe call of each mint_requires_safe deposit (on stderr) and write a "
        "Safe Transaction Builder batch file (to stdout, or --out; every run is recorded as a "
        "Safe export). With --void, show instead the voidDepositRef call that kills exported "
        "payloads."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("deposit_ids", nargs="+", metavar="DEPOSIT")
        parser.add_argument(
            "--safe-nonce",
            type=int,
            default=None,
            help="the Safe nonce the proposal will use, when known",
        )
        parser.add_argument(
            "--checked-export",
            action="append",
            default=[],
            metavar="EXPORT",
            dest="checked_exports",
            help="an earlier export of these deposits that could still mint one of them a "
            "second time and that you checked in the Safe app will never be executed "
            "(repeat for each; the refusal names them)",
        )
        parser.add_argument("--out", default=None, help="write the batch JSON to this file")
        parser.add_argument(
            "--void",
            action="store_true",
            help="show the voidDepositRef call of one deposit instead",
        )

    def run(self, actor, *, deposit_ids, safe_nonce, checked_exports, out, void, **options) -> str:
        if void:
            if len(deposit_ids) != 1 or safe_nonce is not None or checked_exports:
                raise CommandError(
                    "--void takes exactly one deposit and no --safe-nonce or --checked-export."
                )
            result = safe_void_payload_export(deposit_id=deposit_ids[0], actor=actor)
            calls = [result["call"]]
        else:
            result = safe_batch_file(
                deposit_ids=deposit_ids,
                actor=actor,
                safe_nonce=safe_nonce,
                checked_exports=checked_exports,
            )
            calls = result["calls"]
        # The calls go to stderr, so that stdout is the batch JSON alone: `> batch.json`
        # makes a file the Transaction Builder loads.
        for call in calls:
            self.stderr.write(f"{call['text']}\n  data {call['data']}", style_func=None)
        batch = json.dumps(result["batch"], indent=2)
        if out:
            Path(out).write_text(batch + "\n", encoding="utf-8")
            return f"Batch file written to {out}."
        return batch
