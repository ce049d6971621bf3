"""What the accounts services share: the input error, id parsing, the role check and names."""

from __future__ import annotations

import unicodedata
import uuid

from django.utils.translation import gettext as _

from core.exceptions import NotFound, ServiceError

FULL_NAME_MIN_LENGTH = 2
FULL_NAME_MAX_LENGTH = 200  # KycCase.full_name max_length


class InvalidInput(ServiceError):
    """Input that fails validation; ``field`` names the input a form should mark."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _parse_uuid(value: object, *, what: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(_("There is no %(what)s %(id)s.") % {"what": what, "id": value}) from None


def _clean_full_name(value: str, *, required: bool) -> str:
    value = value or ""
    # Control and format characters (newlines, NUL, bidi overrides, zero-width marks) have no
    # place in a name and can make a reviewer read something other than what is stored.
    if any(unicodedata.category(ch).startswith("C") for ch in value if ch != " "):
        raise InvalidInput(
            _("The name contains invisible or control characters; type it again."),
            field="full_name",
        )
    name = " ".join(value.split())
    if not name:
        if required:
            raise InvalidInput(_("Enter your full name as on your ID card."), field="full_name")
        return ""
    if len(name) < FULL_NAME_MIN_LENGTH or len(name) > FULL_NAME_MAX_LENGTH:
        raise InvalidInput(
            _("A full name has between %(min)d and %(max)d characters.")
            % {"min": FULL_NAME_MIN_LENGTH, "max": FULL_NAME_MAX_LENGTH},
            field="full_name",
        )
    if not any(ch.isalpha() for ch in name):
        raise InvalidInput(_("Enter your full name as on your ID card."), field="full_name")
    return name
