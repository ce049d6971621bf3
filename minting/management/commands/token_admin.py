"""Token administration for incident response: pause, freeze, blacklist and revoke_minter
(one person), unpause, unfreeze, unblacklist, wipe and grant_minter (four eyes: a second super
admin runs ``token_admin approve REQUEST_ID``), and ``status`` (the contract's state read
back).

With OPERATOR_PRIVATE_KEY holding the needed role the worker sends the transaction; otherwise
the exact call is printed and ``--payload-out FILE`` writes the Safe Transaction Builder batch
file to load in the Safe."""

from __future__ import annotations

import json
from pathlib import Path

from core.management.base import RefusingCommand, actor_from_email
from minting.services import token_admin as services

SERVICES = services.TOKEN_ACTION_SERVICES


class Command(RefusingCommand):
    help = __doc__

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        for name, op in services.OPERATIONS.items():
            called = f"{op.method}({op.role_arg})" if op.role_arg else op.method
            each = sub.add_parser(name, help=f"{called} (needs {op.role})")
            if op.takes_address:
                each.add_argument("address")
            each.add_argument("--actor", required=True, help="the super admin acting")
            each.add_argument("--reason", required=True)
            each.add_argument("--payload-out", help="write the Safe batch file here")
        approve = sub.add_parser("approve", help="the checker approves a four-eyes request")
        approve.add_argument("request_id")
        approve.add_argument("--actor", required=True, help="the checker (another super admin)")
        approve.add_argument("--reason", default="")
        approve.add_argument("--payload-out", help="write the Safe batch file here")
        status = sub.add_parser("status", help="the token's state, read from the contract")
        status.add_argument("address", nargs="?")
        status.add_argument("--action", help="also the outcome of this queued AdminAction id")
        status.add_argument("--role", default="", help="also hasRole(ROLE, address)")

    def handle(self, *args, operation, **options):
        if operation == "status":
            return self._status(options.get("address"), options.get("action"), options["role"])
        actor = actor_from_email(options["actor"])
        if operation == "approve":
            result = services.token_admin_approve(
                request_id=options["request_id"], checker=actor, reason=options["reason"]
            )
        else:
            kwargs = {"actor": actor, "reason": options["reason"]}
            if services.OPERATIONS[operation].takes_address:
                kwargs["address"] = options["address"]
            result = SERVICES[operation](**kwargs)
        self._report(result, options.get("payload_out"))

    def _report(self, result: services.TokenAdminResult, payload_out: str | None) -> None:
        out = self.stdout.write
        if result.lane == "four_eyes":
            out(
                f"Token {result.operation} request {result.request_id} is waiting for a second "
                f"super admin: python manage.py token_admin approve {result.request_id} "
                "--actor EMAIL"
            )
            return
        if result.held_deposits:
            out(f"Held {len(result.held_deposits)} open deposit(s) to the wallet.")
        if result.lane == "operator":
            out(
                f"Token {result.operation} queued for the operator key ({result.lane_reason}); "
                f"follow it with: python manage.py token_admin status --action {result.action_id}"
            )
            return
        out(f"Safe payload ({result.lane_reason}). Execute through the Safe:")
        out(f"  {result.call['text']}")
        out(f"  to: {result.call['to']}  value: 0  data: {result.call['data']}")
        if payload_out:
            Path(payload_out).write_text(json.dumps(result.batch, indent=2) + "\n")
            out(f"Transaction Builder batch file written to {payload_out}.")
        else:
            out("Add --payload-out FILE to write the Transaction Builder batch file.")
        out("Then check the result: python manage.py token_admin status [ADDRESS]")

    def _status(self, address: str | None, action_id: str | None, role: str) -> None:
        if action_id:
            row = services.token_admin_outcome(action_id=action_id)
            if row is None:
                self.stdout.write(f"Action {action_id}: not executed yet.")
            else:
                detail = row.params.get("refusal") or row.params.get("tx_hash", "")
                self.stdout.write(f"Action {action_id}: {row.outcome} {detail}".rstrip())
        state = services.token_admin_status(address=address, role=role if address else "")
        self.stdout.write(f"token {state['token']}: paused={state['paused']}")
        if address:
            self.stdout.write(
                f"{state['address']}: frozen={state['frozen']} "
                f"blacklisted={state['blacklisted']} balance_units={state['balance_units']}"
            )
            for name, holds in state.get("roles", {}).items():
                self.stdout.write(f"{state['address']}: {name}={holds}")
