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

import json
import re
import unicodedata

_KEEP_CONTROLS = {"\n", "\t"}


def text_raw_storable(data: bytes | str, *, max_chars: int) -> str:
    """A faithful, storable copy of a raw body: invalid UTF-8 as ``\\xNN``, NUL as ``\\x00``,
    capped at ``max_chars`` characters.

    A ``str`` may hold lone surrogates (JSON's ``"\\ud800"`` decodes to one), which no UTF-8
    database column accepts: they are written as ``\\udNNN``, like the bytes above."""
    if not isinstance(data, bytes):
        data = str(data).encode("utf-8", "backslashreplace")
    text = data.decode("utf-8", "backslashreplace")
    return text.replace("\x00", "\\x00")[:max_chars]


def text_free_storable(value: object, *, max_length: int) -> str:
    """Free text as it may be stored and shown: no NUL, no control or format characters
    (newline and tab kept), surrounding space trimmed, clipped to the column."""
    text = "" if value is None else str(value)
    cleaned = "".join(
        ch for ch in text if ch in _KEEP_CONTROLS or not unicodedata.category(ch).startswith("C")
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


JSON_MAX_DEPTH = 64
# A string (escapes included) or a bracket. The quantifiers are possessive and the closing
# quote optional, so an unterminated string is consumed once, to the end: the scan stays
# linear whatever the input (a backtracking pattern was quadratic on `"` followed by `\"`s).
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.DOTALL)


def text_json_loads(data: bytes | str, *, max_depth: int = JSON_MAX_DEPTH, **options):
    """``json.loads`` for outside input: a document nested deeper than ``max_depth`` is a
    ValueError before it reaches the decoder. The decoder recurses once per level, and a
    library in this project raises the interpreter's recursion limit to 100,000 (py_ecc), so
    a few kilobytes of ``[`` could otherwise overflow the C stack and kill the process."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    depth = 0
    for token in _JSON_TOKENS.finditer(raw):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise ValueError(f"the document is nested more than {max_depth} levels deep")
        elif char in (b"]", b"}"):
            depth -= 1
    try:
        return json.loads(data, **options)
    except RecursionError:
        raise ValueError("the document is nested too deeply") from None


def text_storable_as_is(value: str) -> bool:
    """Whether a text can be stored without any change: no NUL (PostgreSQL text refuses it)
    and no lone surrogate (what Python makes of bytes that are not UTF-8, e.g. in argv)."""
    return "\x00" not in value and not any("\ud800" <= ch <= "\udfff" for ch in value)
