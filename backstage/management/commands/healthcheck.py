from django.core.management.base import BaseCommand, CommandError

from backstage.health import health_checks


class Command(BaseCommand):
    help = ("Database (and pending migrations), broker, chain and minter, circuit breaker, "
            "task heartbeats and the last webhook; exits non-zero when the database or the "
            "broker is down.")

    def add_arguments(self, parser):
        parser.add_argument("--offline", action="store_true", help="do not read the chain")

    def handle(self, *args, offline=False, **options):
        checks = health_checks(with_chain=not offline)
        for check in checks:
            mark = "ok  " if check.ok else "FAIL"
            self.stdout.write(f"{mark} {check.name}: {check.detail}")
        failed = [c.name for c in checks if c.critical and not c.ok]
        if failed:
            raise CommandError(f"Not ready: {', '.join(failed)}.")
