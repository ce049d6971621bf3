from django.core.management.base import BaseCommand, CommandError

from backstage.health import health_checks, is_ready


class Command(BaseCommand):
    help = (
        "Database (and pending migrations), cache, broker, chain and minter, circuit "
        "breaker, task heartbeats and the last webhook; exits non-zero when the database, "
        "the cache or the broker is down. Reads the chain live (writing nothing and moving "
        "no alert); --offline shows the last stored check_minter result instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--offline",
            action="store_true",
            help="do not read the chain; show the last stored check",
        )

    def handle(self, *args, offline=False, **options):
        checks = health_checks(chain="stored" if offline else "live")
        for check in checks:
            mark = "ok  " if check.ok else "FAIL"
            self.stdout.write(f"{mark} {check.name}: {check.detail}")
        if not is_ready(checks):
            failed = [c.name for c in checks if c.critical and not c.ok]
            raise CommandError(f"Not ready: {', '.join(failed)}.")
