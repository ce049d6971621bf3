"""Model fields shared by the apps."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models

from core.money import UINT256_MAX


class TokenUnitsField(models.Field):
    """An on-chain amount in token base units (uint256), as a Python int.

    NUMERIC(78,0) on PostgreSQL. On SQLite a decimal-integer TEXT, because SQLite's
    decimals are floating point and lose precision past 15 digits (10**18 units per
    shilling). SQL comparisons of amounts compute units from ``amount_tzs`` instead.
    """

    description = "Token amount in base units (uint256)"

    def __init__(self, *args, signed: bool = False, **kwargs):
        # signed: a movement or a balance of the books (a burn, a discrepancy), whose size is
        # still at most a uint256.
        self.signed = signed
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.signed:
            kwargs["signed"] = True
        return name, path, args, kwargs

    def db_type(self, connection) -> str:
        return "text" if connection.vendor == "sqlite" else "numeric(78, 0)"

    def from_db_value(self, value, expression, connection):
        return None if value is None else int(value)

    def to_python(self, value):
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            raise ValidationError(f"{value!r} is not a whole number of base units.") from None
        if number != number.to_integral_value():
            raise ValidationError(f"{value!r} is not a whole number of base units.")
        return int(number)

    def get_prep_value(self, value):
        value = self.to_python(super().get_prep_value(value))
        if value is None:
            return None
        if self.signed and abs(value) > UINT256_MAX:
            raise ValidationError(f"{value} is larger than a uint256 in size.")
        if not self.signed and not 0 <= value <= UINT256_MAX:
            raise ValidationError(f"{value} is outside the uint256 range.")
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        value = value if prepared else self.get_prep_value(value)
        if value is None:
            return None
        return str(value) if connection.vendor == "sqlite" else Decimal(value)
