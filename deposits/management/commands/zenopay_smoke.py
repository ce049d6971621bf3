"""Go-live check against the real ZenoPay: one real deposit through the normal services, with
ZenoPay's raw answers printed; or, with --status-only, one order-status query and nothing else.

The deposit belongs to a staff member's own customer account, so a payment, if approved on
the phone, lands on the books like any other (and is minted to that person's wallet)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from accounts.selectors import user_kyc_approved
from core.management.base import RefusingCommand, actor_from_email
from core.roles import user_roles
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.payments import payment_initiate_answer
from deposits.zenopay import zenopay_order_status


class Command(RefusingCommand):
    help = (
        "Create one real ZenoPay deposit for a staff member's own verified customer account "
        "and print ZenoPay's raw create and order-status answers; with --status-only ORDER_ID, "
        "only query that order and print the raw answer."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", help="the staff member whose own account deposits")
        parser.add_argument("--phone", help="the mobile number that receives the USSD prompt")
        parser.add_argument(
            "--amount",
            type=int,
            default=None,
            help="whole shillings (default: MIN_DEPOSIT_TZS)",
        )
        parser.add_argument(
            "--status-only",
            metavar="ORDER_ID",
            default=None,
            help="only ask ZenoPay about this order and print its raw answer",
        )

    def handle(self, *args, email, phone, amount, status_only, **options):
        if status_only is not None:
            self._status(status_only.strip())
            return
        if not email or not phone:
            raise CommandError("Give --email and --phone (or --status-only ORDER_ID).")
        user = actor_from_email(email)
        wallet = user.wallets.verified().order_by("verified_at").first()
        if not user_roles(user):
            raise CommandError(
                f"{user.email} holds no staff role; the smoke deposit must be a staff "
                f"member's own account."
            )
        if not user_kyc_approved(user):
            raise CommandError(f"{user.email}'s identity check is not approved.")
        if wallet is None:
            raise CommandError(f"{user.email} has no verified wallet to receive the mint.")
        deposit, _created = deposit_create(
            user=user,
            data=DepositInput(
                amount_tzs=amount if amount is not None else settings.MIN_DEPOSIT_TZS,
                payment_provider="zenopay",
                wallet_id=wallet.pk,
                buyer_phone=phone,
            ),
        )
        self.stdout.write(f"deposit {deposit.pk} ({deposit.amount_tzs} TZS, {deposit.status})")
        initiated = payment_initiate_answer(deposit_id=deposit.pk)
        self.stdout.write(f"create: {initiated.outcome}")
        if initiated.outcome == "skipped":
            self.stdout.write("  a worker sent the create first; its answer is in the worker's log")
        else:
            self.stdout.write(initiated.answer)
        self._status(str(deposit.pk))

    def _status(self, order_id: str) -> None:
        if not order_id:
            raise CommandError("Give the order id to query.")
        status = zenopay_order_status(order_id=order_id)
        summary = (
            f"payment_status={status.payment_status}"
            if status.known
            else f"not readable as a payment state: {status.reason}"
        )
        self.stdout.write(f"order-status {order_id}: HTTP {status.http_status}, {summary}")
        self.stdout.write(status.raw_body)
