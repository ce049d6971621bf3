"""Typed, validated reading of the environment (DESIGN §10).

Every reader raises ImproperlyConfigured with one sentence that names the variable, so a
misconfigured process refuses to start and says why. Money and token figures are integers;
the only decimal input (MINTER_MIN_GAS_ETH) is parsed with Decimal and converted to wei.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

_PRIVATE_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def refuse(name: str, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name} {why}")


def raw(name: str, *aliases: str) -> str | None:
    for key in (name, *aliases):
        value = env.str(key, default=None)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def read_str(name: str, default: str = "", *aliases: str) -> str:
    value = raw(name, *aliases)
    return default if value is None else value


def read_int(name: str, default: int | None, *, minimum: int | None = None) -> int | None:
    value = raw(name)
    if value is None:
        return default
    cleaned = value.replace("_", "").replace(",", "")
    if not re.fullmatch(r"-?\d+", cleaned):
        raise refuse(name, f"must be a whole number, got {value!r}.")
    number = int(cleaned)
    if minimum is not None and number < minimum:
        raise refuse(name, f"must be at least {minimum}, got {number}.")
    return number


def read_int_or_default(name: str, default: int) -> int:
    """A positive whole number; zero, negative or garbage falls back to the default.

    Used where a bad value must never turn into a dangerous one (a Safe threshold of 0
    would send every deposit to the multisig lane; DESIGN §5 says fall back instead).
    """
    value = raw(name)
    if value is None:
        return default
    cleaned = value.replace("_", "").replace(",", "")
    if not re.fullmatch(r"\d+", cleaned) or int(cleaned) <= 0:
        return default
    return int(cleaned)


def read_bool(name: str, default: bool | None) -> bool | None:
    value = raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise refuse(name, f"must be true or false, got {value!r}.")


def read_list(name: str, default: list[str] | None = None) -> list[str]:
    value = raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def read_url(name: str, default: str = "", *aliases: str) -> str:
    value = read_str(name, default, *aliases)
    if value == "":
        return value
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise refuse(name, f"must be an http(s) URL, got {value!r}.")
    return value.rstrip("/")


def read_private_key(name: str) -> str:
    value = raw(name)
    if value is None:
        return ""
    if not _PRIVATE_KEY_RE.fullmatch(value):
        # Never echo the value: it is a secret.
        raise refuse(name, "must be a 32-byte hex private key (64 hex digits, optional 0x).")
    return value if value.startswith("0x") else f"0x{value}"


def read_address(name: str, *aliases: str) -> str:
    value = raw(name, *aliases)
    if value is None:
        return ""
    if not _ADDRESS_RE.fullmatch(value):
        raise refuse(name, f"must be a 0x-prefixed 20-byte hex address, got {value!r}.")
    return value


def read_address_map(name: str) -> dict[str, list[str]]:
    """A JSON object of names to lists of addresses, such as
    ``{"MINTER_ROLE": ["0x..."], "DEFAULT_ADMIN_ROLE": ["0x...", "0x..."]}``; addresses are
    kept lower-case so comparisons ignore the checksum's capitals. Unset: empty."""
    value = raw(name)
    if value is None or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        raise refuse(name, 'must be a JSON object such as {"MINTER_ROLE": ["0x..."]}.') from None
    if not isinstance(parsed, dict):
        raise refuse(name, 'must be a JSON object such as {"MINTER_ROLE": ["0x..."]}.')
    result = {}
    for key, addresses in parsed.items():
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and _ADDRESS_RE.fullmatch(a) for a in addresses
        ):
            raise refuse(name, f"{key!r} must map to a list of 0x-prefixed 20-byte addresses.")
        result[str(key)] = sorted({a.lower() for a in addresses})
    return result


def read_eth_as_wei(name: str, default: str) -> int:
    value = read_str(name, default)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise refuse(name, f"must be an amount of ETH such as 0.001, got {value!r}.") from None
    if amount < 0 or not amount.is_finite():
        raise refuse(name, f"must be a non-negative amount of ETH, got {value!r}.")
    return int(amount * 10**18)


def read_database(name: str, default: str | None) -> dict:
    value = raw(name) or default
    if value is None:
        raise refuse(name, "is required: set it to a postgres:// URL.")
    try:
        return env.db_url_config(value)
    except Exception:  # django-environ raises several types for a bad URL
        raise refuse(name, "is not a database URL django-environ understands.") from None


ALIASES = {"APP_URL": ("NEXT_PUBLIC_APP_URL",)}


def require(names: list[str], profile: str) -> None:
    for name in names:
        if raw(name, *ALIASES.get(name, ())) is None:
            raise refuse(name, f"is required in the {profile} profile; set it in the environment.")
