"""The API's JSON parser, with the nesting of outside documents bounded (DESIGN §14
invariant 13).

A library this project loads (py_ecc) raises the interpreter's recursion limit to 100,000, so
the C JSON decoder would follow about as many levels: a request body of ~200 KB made of ``[``
overflows the C stack and kills the worker process (a segmentation fault, not even a 500).
``core.text.text_json_loads`` refuses such a document first; this parser uses it for every
API request."""

from __future__ import annotations

import codecs

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json as drf_json

from core.text import text_json_loads


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser, reading through ``text_json_loads``."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        # DRF reads the body without Django's upload cap: apply it here, before decoding.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:
            raw = b""
        else:
            raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise ParseError(f"JSON parse error - the body is larger than {limit} bytes")
        try:
            text = codecs.decode(raw, encoding)
            parse_constant = drf_json.strict_constant if self.strict else None
            return text_json_loads(text, parse_constant=parse_constant)
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
