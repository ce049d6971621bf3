from django.core.management.base import BaseCommand, CommandError

from backstage.health import health_checks, is_ready


class Command(BaseCommand):
    help = (
        "Database (and pending migrations), cache, broker, chain and minter, circuit "
        "breaker, task heartbeats, the last webhook, the indexer, the last supply snapshot "
        "and open alerts; exits non-zero when the database, the cache or the broker is down "
        "(--strict: when any check fails). Reads the chain live (writing nothing and moving "
        "no alert); --offline shows the last stored check_minter result instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--offline",
            action="store_true",
            help="do not read the chain; show the last stored check",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="exit non-zero on any failed check, not only those that stop the web process",
        )

    def handle(self, *args, offline=False, strict=False, **options):
        checks = health_checks(chain="stored" if offline else "live")
        for check in checks:
            mark = "ok  " if check.ok else "FAIL"
            self.stdout.write(f"{mark} {check.name}: {check.detail}")
        if not is_ready(checks):
            failed = [c.name for c in checks if c.critical and not c.ok]
            raise CommandError(f"Not ready: {', '.join(failed)}.")
        failed = [c.name for c in checks if not c.ok]
        if strict and failed:
            raise CommandError(f"Checks failed: {', '.join(failed)}.")
