from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ServiceError
from core.management.base import actor_from_email
from core.services import dual_control_approve


class Command(BaseCommand):
    help = "Approve a pending four-eyes request as its checker (a different person)."

    def add_arguments(self, parser):
        parser.add_argument("request_id")
        parser.add_argument("--actor", required=True, help="the checker's email")
        parser.add_argument("--reason", default="")

    def handle(self, *args, request_id, actor, reason, **options):
        checker = actor_from_email(actor)
        try:
            request = dual_control_approve(request_id=request_id, checker=checker, reason=reason)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Approved {request.action} request {request.pk} "
            f"for {request.target_type} {request.target_id}."
        )
