"""Making outside text storable (DESIGN §14 invariant 13).

Two different treatments, never mixed up:
- free text (messages, channel names, notes): cleaned of NUL and control characters and
  clipped to its column — losing the tail of a message changes nothing;
- identifiers and compared values (order id, transid, reference, msisdn, amount, status): never
  clipped — clipping could merge two payments or change the digits phones are compared on. A
  value that does not fit its column is "unreadable" and the caller decides (hold, refuse).
Raw bodies are kept faithfully: bytes that are not UTF-8 and NUL (which PostgreSQL text cannot
hold) are escaped, not dropped.
"""

from __future__ import annotations

import unicodedata

_KEEP_CONTROLS = {"\n", "\t"}


def text_raw_storable(data: bytes | str, *, max_chars: int) -> str:
    """A faithful, storable copy of a raw body: invalid UTF-8 as ``\\xNN``, NUL as ``\\x00``,
    capped at ``max_chars`` characters."""
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else str(data)
    return text.replace("\x00", "\\x00")[:max_chars]


def text_free_storable(value: object, *, max_length: int) -> str:
    """Free text as it may be stored and shown: no NUL, no control or format characters
    (newline and tab kept), surrounding space trimmed, clipped to the column."""
    text = "" if value is None else str(value)
    cleaned = "".join(
        ch for ch in text
        if ch in _KEEP_CONTROLS or not unicodedata.category(ch).startswith("C")
    )
    return cleaned.strip()[:max_length]


def text_identifier(value: object) -> str:
    """An identifier as text, trimmed and never clipped. A value that is not a string or a
    number (a list, an object, a boolean) comes back as its repr, which ``text_identifier_fits``
    then judges like any other text."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return repr(value)
    return str(value).strip()


def text_identifier_fits(value: str, *, max_length: int) -> bool:
    """Whether an identifier can be stored and compared as it is: it fits its column and
    holds no NUL or control character."""
    return len(value) <= max_length and not any(
        unicodedata.category(ch).startswith("C") for ch in value
    )
