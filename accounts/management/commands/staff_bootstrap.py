"""Make the first two super admins, only while no one holds a staff role:

    manage.py staff_bootstrap --email a@example.tz --email b@example.tz

Afterwards it refuses; roles are then granted with ``staff_role_grant`` (two people)."""

from django.core.management.base import BaseCommand, CommandError

from accounts.services.staff import staff_bootstrap
from core.exceptions import ServiceError


class Command(BaseCommand):
    help = "Make the first two super admins (works only while no one holds a staff role)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--email",
            action="append",
            required=True,
            dest="emails",
            help="give it twice: two different people",
        )

    def handle(self, *args, emails, **options):
        try:
            result = staff_bootstrap(emails=emails)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        for user, created in result:
            how = (
                "account created; a link to choose a password was e-mailed"
                if created
                else "existing account"
            )
            self.stdout.write(
                f"{user.email} is now a super admin ({how}); they set up their "
                "authenticator at their first Backstage login."
            )
