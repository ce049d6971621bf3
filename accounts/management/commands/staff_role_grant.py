"""Ask for a staff role to be granted (four eyes; super admins only):

    manage.py staff_role_grant --email X --role bank_admin --evidence "TICKET-42" --actor EMAIL

A different super admin, not the grantee, decides it with ``dual_control_approve REQUEST_ID``
(or ``dual_control_reject``)."""

from django.core.management.base import BaseCommand, CommandError

from accounts.services.staff import staff_role_grant_request
from core.exceptions import ServiceError
from core.management.base import actor_from_email
from core.roles import STAFF_ROLES


class Command(BaseCommand):
    help = "Ask for a staff role to be granted; a second super admin approves it."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="the grantee's email")
        parser.add_argument("--role", required=True, choices=STAFF_ROLES)
        parser.add_argument(
            "--evidence", required=True, help="why: a ticket or an approval reference"
        )
        parser.add_argument("--actor", required=True, help="the maker's email (a super admin)")

    def handle(self, *args, email, role, evidence, actor, **options):
        maker = actor_from_email(actor)
        try:
            request = staff_role_grant_request(
                email=email, role=role, evidence=evidence, maker=maker
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Requested {role} for {email}: request {request.pk}. Another super "
            f"admin approves it with: manage.py dual_control_approve {request.pk} "
            "--actor EMAIL"
        )
