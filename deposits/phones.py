"""Tanzanian mobile numbers (DESIGN §6): accept +255…, 255…, 0…, 9 bare digits, spaces and
dashes; store E.164; ZenoPay wants the local 0XXXXXXXXX form; compare on the last 9 digits."""

from __future__ import annotations

import re

import phonenumbers
from django.utils.translation import gettext as _

from deposits.exceptions import InvalidDeposit

# Mobile prefixes 061–079: the library's metadata lags new allocations (e.g. 064), and a
# customer must not be refused for a number the operators hand out.
_MOBILE_NATIONAL = re.compile(r"^(6[1-9]|7[0-9])\d{7}$")


def phone_normalize_tz(raw: str) -> str:
    """E.164 of a Tanzanian mobile number, or InvalidDeposit with a sentence."""
    text = (raw or "").strip()
    if not text:
        raise InvalidDeposit(_("Enter the mobile number that will pay."), field="buyer_phone")
    compact = re.sub(r"[\s\-().]", "", text)
    _refuse_wrong_length(compact)
    if not re.fullmatch(r"\+?\d{9,15}", compact):
        raise InvalidDeposit(
            _("Enter a Tanzanian mobile number such as 0712 345 678."), field="buyer_phone"
        )
    if re.fullmatch(r"\d{9}", compact):
        compact = "0" + compact
    if compact.startswith("255"):
        compact = "+" + compact
    try:
        number = phonenumbers.parse(compact, "TZ")
    except phonenumbers.NumberParseException:
        raise InvalidDeposit(
            _("Enter a Tanzanian mobile number such as 0712 345 678."), field="buyer_phone"
        ) from None
    if number.country_code != 255:
        raise InvalidDeposit(
            _("Only Tanzanian mobile numbers (+255) can pay with mobile money."),
            field="buyer_phone",
        )
    national = str(number.national_number)
    kind = phonenumbers.number_type(number)
    library_mobile = phonenumbers.is_valid_number(number) and kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    if not (library_mobile or _MOBILE_NATIONAL.fullmatch(national)) or len(national) != 9:
        raise InvalidDeposit(
            _("That is not a Tanzanian mobile number; mobile numbers start with 06 or 07."),
            field="buyer_phone",
        )
    return f"+255{national}"


def _refuse_wrong_length(compact: str) -> None:
    """A number written as a Tanzanian mobile number (06…/07…, 2556…/2557…, +2556…/+2557…)
    with digits missing or extra is refused for its length, the mistake it has, not as "not
    a mobile number"."""
    match = re.fullmatch(r"(?:\+?255|0)([67]\d*)", compact)
    if match is None or len(match.group(1)) == 9:
        return
    if len(match.group(1)) > 9:
        raise InvalidDeposit(
            _(
                "That number is too long: a Tanzanian mobile number has 10 digits, such as "
                "0712 345 678."
            ),
            field="buyer_phone",
        )
    raise InvalidDeposit(
        _(
            "That number is too short: a Tanzanian mobile number has 10 digits, such as "
            "0712 345 678."
        ),
        field="buyer_phone",
    )


def phone_local_form(e164: str) -> str:
    """+255712345678 → 0712345678 (what ZenoPay's create call takes)."""
    return "0" + e164.removeprefix("+255")


def phone_last9(value: str | None) -> str:
    digits = re.sub(r"\D", "", value or "")
    return digits[-9:]


def phone_mask(e164: str) -> str:
    """+255712345678 → +255 7•• ••• 678: enough to recognise, not enough to reuse."""
    if not e164 or len(e164) < 7:
        return "•••"
    return f"{e164[:4]} {e164[4]}•• ••• {e164[-3:]}"
