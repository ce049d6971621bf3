from django.core.management.base import BaseCommand, CommandError

from reconciliation.services.roles import RoleHolder, token_roles_report


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


class Command(BaseCommand):
    help = (
        "Who holds each token role (DEFAULT_ADMIN_ROLE, MINTER_ROLE, PAUSER_ROLE, "
        "FREEZER_ROLE, BLACKLISTER_ROLE, WIPER_ROLE, BURNER_ROLE): the indexed role events, "
        "each holder confirmed with hasRole on chain now, next to "
        "TOKEN_ROLE_EXPECTED_HOLDERS, with how far the events are indexed. Prints a table "
        "and writes nothing. Exits 1 with a sentence when an address outside the expected "
        "holders holds a role, or when the chain cannot be read (then nothing is confirmed); "
        "expected holders without their role and events that disagree with the chain are "
        "flagged in the table without changing the exit status."
    )

    def handle(self, *args, **options):
        report = token_roles_report()
        out = self.stdout.write
        out(f"chain {report.chain_id} token {report.contract_address or '(not configured)'}")
        if report.cursor is None:
            out("role events: not indexed yet (run manage.py index_chain)")
        else:
            head = ""
            if report.head is not None:
                head = f"; chain head {report.head}, {report.blocks_behind} block(s) later"
            out(
                f"role events indexed up to block {report.cursor.block_number} "
                f"at {report.cursor.updated_at:%Y-%m-%d %H:%M:%S} UTC{head}"
            )
        source = (
            "TOKEN_ROLE_EXPECTED_HOLDERS"
            if report.expected_configured
            else "defaults (TOKEN_ROLE_EXPECTED_HOLDERS unset)"
        )
        out(f"expected holders from: {source}")
        rows = [("ROLE", "HOLDER", "EVENTS", "CHAIN", "EXPECTED", "FINDING")]
        rows += [self._row(holder) for holder in report.holders]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            out("  ".join([*cells, row[5]]).rstrip())
        for role in report.roles:
            if not report.holders_of(role):
                out(f"{role}: no holder")
        if report.refusal:
            raise CommandError(report.refusal)
        if report.expected_missing or report.disagreements:
            out(
                f"No unexpected holder; flagged: {len(report.expected_missing)} expected "
                f"holder(s) without their role, {len(report.disagreements)} disagreement(s) "
                "between the indexed events and the chain."
            )
        else:
            out("OK: every holder is expected and confirmed on chain.")

    @staticmethod
    def _row(holder: RoleHolder) -> tuple[str, ...]:
        return (
            holder.role,
            holder.account,
            "granted" if holder.indexed else "-",
            _yes_no(holder.on_chain),
            "yes" if holder.expected else "no",
            " ".join(holder.findings) or "ok",
        )
