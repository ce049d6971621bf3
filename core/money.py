"""Shillings are whole numbers; token amounts are integer base units. One conversion."""

from __future__ import annotations

NTZS_DECIMALS = 18
UNITS_PER_TZS = 10**NTZS_DECIMALS
UINT256_MAX = 2**256 - 1


class MoneyError(ValueError):
    """An amount that is not a whole, non-negative number of the expected unit."""


def _require_int(value: object, what: str) -> int:
    # bool is an int subclass and a Decimal/float could hide a fraction: refuse both.
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyError(f"{what} must be a whole number, got {value!r}.")
    if value < 0:
        raise MoneyError(f"{what} must not be negative, got {value}.")
    return value


def tzs_to_units(amount_tzs: int) -> int:
    """Whole shillings to NTZS base units: ``units = amount_tzs * 10**18``."""
    units = _require_int(amount_tzs, "amount_tzs") * UNITS_PER_TZS
    if units > UINT256_MAX:
        raise MoneyError(f"amount_tzs {amount_tzs} does not fit a uint256.")
    return units


def units_to_tzs(amount_units: int) -> int:
    """Base units to whole shillings; refuses a fraction of a shilling rather than round it."""
    units = _require_int(amount_units, "amount_units")
    whole, fraction = divmod(units, UNITS_PER_TZS)
    if fraction:
        raise MoneyError(f"{units} base units is not a whole number of shillings.")
    return whole


def units_format(amount_units: int) -> str:
    """An amount for a sentence a person reads: ``"5,000 TZS"``, or the raw base units when
    it is not a whole number of shillings (a wrong-amount refusal must show what was there)."""
    try:
        return f"{units_to_tzs(amount_units):,} TZS"
    except MoneyError:
        return f"{amount_units} base units"


def units_as_ntzs(amount_units: int) -> str:
    """Signed base units as an exact decimal of nTZS: ``1500000000000000000`` → ``"1.5"``,
    ``-1`` → ``"-0.000000000000000001"``. Integer arithmetic only: a float would round."""
    if isinstance(amount_units, bool) or not isinstance(amount_units, int):
        raise MoneyError(f"amount_units must be a whole number, got {amount_units!r}.")
    sign = "-" if amount_units < 0 else ""
    whole, fraction = divmod(abs(amount_units), UNITS_PER_TZS)
    if not fraction:
        return f"{sign}{whole}"
    digits = f"{fraction:0{NTZS_DECIMALS}d}".rstrip("0")
    return f"{sign}{whole}.{digits}"


def units_decimal_text(amount_units: int) -> str:
    """Base units as an exact decimal number of nTZS with all its decimals, for machines
    (the public supply endpoints): ``1500000000000000000`` -> ``"1.500000000000000000"``.
    Integer arithmetic only: no float ever holds a supply."""
    if isinstance(amount_units, bool) or not isinstance(amount_units, int):
        raise MoneyError(f"amount_units must be a whole number, got {amount_units!r}.")
    sign = "-" if amount_units < 0 else ""
    whole, fraction = divmod(abs(amount_units), UNITS_PER_TZS)
    return f"{sign}{whole}.{fraction:0{NTZS_DECIMALS}d}"


def units_whole_ntzs(amount_units: int) -> int:
    """Whole nTZS in a non-negative amount of base units, the fraction dropped: for a chart's
    bar, never for a figure anyone reconciles (those stay exact, ``units_as_ntzs``)."""
    return _require_int(amount_units, "amount_units") // UNITS_PER_TZS
