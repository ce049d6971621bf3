"""Approve or reject a pending KYC case:

manage.py kyc_review CASE_ID --approve --actor EMAIL
manage.py kyc_review CASE_ID --reject --reason "Name does not match the ID card" --actor EMAIL
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import KycCase
from accounts.selectors import user_get_by_email
from accounts.services import kyc_review
from core.exceptions import ServiceError


class Command(BaseCommand):
    help = "Approve or reject a pending KYC case (platform_compliance or super_admin)."

    def add_arguments(self, parser):
        parser.add_argument("case_id", help="UUID of the KYC case")
        decision = parser.add_mutually_exclusive_group(required=True)
        decision.add_argument("--approve", action="store_true")
        decision.add_argument("--reject", action="store_true")
        parser.add_argument("--reason", default="", help="required with --reject")
        parser.add_argument("--actor", required=True, help="email of the staff member deciding")

    def handle(self, *args, case_id, approve, reject, reason, actor, **options):
        decision = KycCase.Status.APPROVED if approve else KycCase.Status.REJECTED
        try:
            case = kyc_review(
                case_id=case_id,
                actor=user_get_by_email(email=actor),
                decision=decision,
                reason=reason,
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"KYC case {case.pk} {case.status} by {actor}.")
