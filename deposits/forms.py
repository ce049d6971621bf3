"""Forms of the customer deposit pages. They only shape input; the rules (amounts, limits,
phone numbers, wallets, banks) are in ``deposits.services.intake``, whose refusals the views
attach to the form."""

from __future__ import annotations

import re
import unicodedata
import uuid

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.selectors import user_verified_wallets
from deposits.models import DepositRequest
from deposits.selectors import banks_for_transfer
from deposits.services.intake import DepositInput

Provider = DepositRequest.Provider
# More digits than any deposit can have: refused here, before the service, so an absurd
# number never reaches a database column.
AMOUNT_MAX_DIGITS = 12


def tsh(amount_tzs: int) -> str:
    """5000 → "5,000": shillings with thousands separators, in every language."""
    return f"{amount_tzs:,}"


def phone_local_display(e164: str) -> str:
    """+255712345678 → "0712 345 678", how Tanzanians write their own number."""
    if not re.fullmatch(r"\+255\d{9}", e164 or ""):
        return ""
    local = "0" + e164[4:]
    return f"{local[:4]} {local[4:7]} {local[7:]}"


def short_address(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def _ascii_digits(text: str) -> str:
    """Decimal digits of any script as ASCII ("٥٠٠٠" → "5000"); a character that only looks
    like a digit ("²", "①") is refused here, as Python's int() would refuse it later."""
    out = []
    for char in text:
        if char.isdecimal():
            out.append(str(unicodedata.decimal(char)))
        elif char.isdigit() or char.isnumeric():
            raise forms.ValidationError(_("Enter the amount in whole shillings, for example 5000."))
        else:
            out.append(char)
    return "".join(out)


def _uuid_or_none(value) -> str | None:
    try:
        return str(uuid.UUID(str(value).strip())) if value else None
    except ValueError:
        return None


class DepositForm(forms.Form):
    amount_tzs = forms.CharField(
        label=_("Amount (TSh)"),
        max_length=24,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "off",
                "data-amount": "",
                "placeholder": "10,000",
            }
        ),
    )
    payment_provider = forms.ChoiceField(
        label=_("How will you pay?"),
        choices=[
            (Provider.ZENOPAY, _("Mobile money (M-Pesa, Mixx by Yas, Airtel Money, Halopesa)")),
            (Provider.BANK_TRANSFER, _("Bank transfer")),
        ],
        initial=Provider.ZENOPAY,
        widget=forms.RadioSelect(attrs={"data-provider": ""}),
    )
    buyer_phone = forms.CharField(
        label=_("Mobile number that will pay"),
        required=False,
        max_length=32,
        help_text=_("For mobile money: the payment request goes to this phone."),
        widget=forms.TextInput(
            attrs={
                "type": "tel",
                "inputmode": "tel",
                "autocomplete": "tel",
                "placeholder": "0712 345 678",
            }
        ),
    )
    bank = forms.ChoiceField(
        label=_("Bank you will transfer from"),
        required=False,
        help_text=_("For bank transfer only."),
    )
    wallet = forms.ChoiceField(label=_("Wallet to receive nTZS"))
    idempotency_key = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["wallet"].choices = [
            (str(w.pk), short_address(w.address)) for w in user_verified_wallets(user)
        ]
        self.fields["bank"].choices = [("", _("Choose a bank"))] + [
            (str(b.pk), b.name) for b in banks_for_transfer()
        ]
        self.fields["amount_tzs"].help_text = _("From TSh %(min)s to TSh %(max)s per deposit.") % {
            "min": tsh(settings.MIN_DEPOSIT_TZS),
            "max": tsh(settings.MAX_DEPOSIT_TZS),
        }
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", str(uuid.uuid4()))
            self.initial.setdefault("buyer_phone", phone_local_display(user.phone))
            if len(self.fields["wallet"].choices) == 1:
                self.initial.setdefault("wallet", self.fields["wallet"].choices[0][0])

    def clean_amount_tzs(self) -> str:
        text = _ascii_digits(self.cleaned_data["amount_tzs"].strip())
        digits = re.sub(r"[\s,._]", "", text)
        if digits.isdigit() and len(digits.lstrip("0")) > AMOUNT_MAX_DIGITS:
            raise forms.ValidationError(
                _("The largest single deposit is TSh %(max)s.")
                % {"max": tsh(settings.MAX_DEPOSIT_TZS)}
            )
        return text

    def clean_idempotency_key(self) -> str | None:
        # A missing or damaged hidden field: this one submission has no replay protection.
        return _uuid_or_none(self.cleaned_data["idempotency_key"])

    def deposit_input(self) -> DepositInput:
        data = self.cleaned_data
        bank_transfer = data["payment_provider"] == Provider.BANK_TRANSFER
        return DepositInput(
            amount_tzs=data["amount_tzs"],
            payment_provider=data["payment_provider"],
            wallet_id=data["wallet"],
            buyer_phone="" if bank_transfer else data["buyer_phone"],
            bank_id=(data["bank"] or None) if bank_transfer else None,
            idempotency_key=data["idempotency_key"],
        )

    def renew_idempotency_key(self) -> None:
        """After the key was spent on another deposit: the next submission gets a new one."""
        self.data = self.data.copy()
        self.data["idempotency_key"] = str(uuid.uuid4())

    def ensure_idempotency_key(self) -> None:
        """A form shown again always carries a key, so its next submission is replay-safe."""
        if self.is_bound and _uuid_or_none(self.data.get("idempotency_key")) is None:
            self.renew_idempotency_key()
