from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from core.fields import TokenUnitsField
from core.money import (
    UINT256_MAX,
    MoneyError,
    tzs_to_units,
    units_as_ntzs,
    units_format,
    units_to_tzs,
)


def test_tzs_to_units_is_exact_for_large_amounts():
    assert tzs_to_units(1) == 10**18
    assert tzs_to_units(123_456_789_012) == 123_456_789_012 * 10**18
    assert units_to_tzs(tzs_to_units(987_654_321)) == 987_654_321


@pytest.mark.parametrize("bad", [1.5, Decimal("1000"), "1000", True, None, -1])
def test_tzs_to_units_refuses_anything_but_a_non_negative_int(bad):
    with pytest.raises(MoneyError):
        tzs_to_units(bad)


def test_units_to_tzs_refuses_a_fraction_of_a_shilling():
    with pytest.raises(MoneyError, match="not a whole number of shillings"):
        units_to_tzs(10**18 + 1)


def test_tzs_to_units_refuses_an_amount_beyond_uint256():
    with pytest.raises(MoneyError, match="uint256"):
        tzs_to_units(UINT256_MAX // 10**18 + 1)


class _Connection:
    def __init__(self, vendor):
        self.vendor = vendor


def test_token_units_field_is_numeric_on_postgresql_and_text_on_sqlite():
    field = TokenUnitsField()
    assert field.db_type(_Connection("postgresql")) == "numeric(78, 0)"
    assert field.db_type(_Connection("sqlite")) == "text"
    big = 2**255 + 12345
    assert field.get_db_prep_value(big, _Connection("sqlite")) == str(big)
    assert field.get_db_prep_value(big, _Connection("postgresql")) == Decimal(big)
    assert field.from_db_value(str(big), None, _Connection("sqlite")) == big


@pytest.mark.parametrize("bad", ["1.5", -1, UINT256_MAX + 1, "abc"])
def test_token_units_field_refuses_fractions_negatives_and_overflow(bad):
    with pytest.raises(ValidationError):
        TokenUnitsField().get_db_prep_value(bad, _Connection("postgresql"))


@pytest.mark.django_db
def test_token_units_round_trip_through_postgresql_keeps_every_digit(django_db_blocker):
    from django.db import connection

    value = 2**256 - 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::numeric(78, 0)", [TokenUnitsField().get_db_prep_value(value, connection)]
        )
        (stored,) = cursor.fetchone()
    assert TokenUnitsField().from_db_value(stored, None, connection) == value


def test_units_format_says_shillings_or_the_raw_units():
    assert units_format(tzs_to_units(5_000)) == "5,000 TZS"
    assert units_format(tzs_to_units(5_000) + 1) == "5000000000000000000001 base units"


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (0, "0"),
        (5_000 * 10**18, "5000"),
        (1_500_000_000_000_000_000, "1.5"),
        (-1, "-0.000000000000000001"),
        (-(10**18) - 10**17, "-1.1"),
        (UINT256_MAX, str(UINT256_MAX // 10**18) + "." + str(UINT256_MAX % 10**18).rstrip("0")),
    ],
)
def test_units_as_ntzs_is_exact_and_signed(units, text):
    assert units_as_ntzs(units) == text


@pytest.mark.parametrize("bad", [1.5, True, "10"])
def test_units_as_ntzs_refuses_anything_but_an_int(bad):
    with pytest.raises(MoneyError):
        units_as_ntzs(bad)
