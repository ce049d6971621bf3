"""Ask for the manual verification of a wallet (the maker's half of a four-eyes action):

    manage.py wallet_verify_manual 0xADDRESS --user CUSTOMER_EMAIL --evidence "..." --actor EMAIL

The account and the address are both named: several accounts may have registered one
address, and only the registration of that account is verified. Prints the request id; a
different person approves it with ``manage.py dual_control_approve REQUEST_ID --actor EMAIL``.
Four eyes on the command line are only as strong as the control over who may run commands as
whom.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import user_get_by_email
from accounts.services import wallet_verify_manual_request
from core.exceptions import ServiceError


class Command(BaseCommand):
    help = "Request the manual verification of an account's wallet; another person must approve it."

    def add_arguments(self, parser):
        parser.add_argument("address", help="the wallet address (0x…)")
        parser.add_argument(
            "--user", required=True, help="email of the account that registered the wallet"
        )
        parser.add_argument(
            "--evidence", required=True, help="why this wallet belongs to its account holder"
        )
        parser.add_argument("--actor", required=True, help="email of the staff member asking")
        parser.add_argument("--chain", default="base")

    def handle(self, *args, address, user, evidence, actor, chain, **options):
        try:
            request = wallet_verify_manual_request(
                user=user_get_by_email(email=user),
                address=address,
                evidence=evidence,
                maker=user_get_by_email(email=actor),
                chain=chain,
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(request.pk))
        self.stderr.write(
            f"Manual verification of {request.params['address']} for {user} is waiting for a "
            f"checker: a different person runs `manage.py dual_control_approve {request.pk} "
            "--actor EMAIL`."
        )
