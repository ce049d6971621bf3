from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from backstage.demo import demo_refusal
from core.exceptions import ServiceError
from deposits.models import Bank, DepositRequest
from deposits.services.intake import DepositInput, deposit_create


class Command(BaseCommand):
    help = (
        "Local chain only (local or test profile): start a deposit for a customer through "
        "the same service as the pages, so the ZenoPay sandbox phone "
        "(/sandbox/zenopay/phone/) has a push to approve."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", default="customer@ntzs.local")
        parser.add_argument("--amount", required=True, help="whole shillings")
        parser.add_argument("--phone", default="0712345678")
        parser.add_argument("--bank", help="bank name: a bank transfer instead of mobile money")

    def handle(self, *args, email, amount, phone, bank=None, **options):
        if refusal := demo_refusal("demo_deposit"):
            raise CommandError(refusal)
        user = User.objects.filter(email=email.strip().lower()).first()
        if user is None:
            raise CommandError(f"There is no user {email!r}.")
        wallet = user.wallets.filter(verified_at__isnull=False).first()
        if wallet is None:
            raise CommandError(f"{email} has no verified wallet.")
        bank_obj = Bank.objects.filter(name=bank).first() if bank else None
        if bank and bank_obj is None:
            raise CommandError(f"There is no bank named {bank!r}.")
        provider = (
            DepositRequest.Provider.BANK_TRANSFER if bank_obj else DepositRequest.Provider.ZENOPAY
        )
        try:
            deposit, _ = deposit_create(
                user=user,
                data=DepositInput(
                    amount_tzs=amount,
                    payment_provider=provider,
                    wallet_id=wallet.pk,
                    buyer_phone=phone,
                    bank_id=bank_obj.pk if bank_obj else None,
                ),
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"deposit {deposit.pk} {deposit.amount_tzs} TZS ({deposit.status})")
        if deposit.transfer_reference:
            self.stdout.write(f"transfer reference {deposit.transfer_reference}")
