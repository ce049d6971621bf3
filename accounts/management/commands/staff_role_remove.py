"""Remove a staff role (one super admin; taking access away must not wait):

manage.py staff_role_remove --email X --role bank_admin --reason "left the bank" --actor EMAIL
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.services.staff import staff_role_remove
from core.exceptions import ServiceError
from core.management.base import actor_from_email
from core.roles import STAFF_ROLES


class Command(BaseCommand):
    help = "Remove a staff role from a person (a super admin, alone)."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, choices=STAFF_ROLES)
        parser.add_argument("--reason", required=True)
        parser.add_argument("--actor", required=True, help="the super admin's email")

    def handle(self, *args, email, role, reason, actor, **options):
        try:
            holder = staff_role_remove(
                email=email, role=role, reason=reason, actor=actor_from_email(actor)
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Removed {role} from {holder.email}.")
