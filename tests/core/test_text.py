"""core.text: outside text made storable — raw bodies faithful, free text clipped,
identifiers never clipped, JSON nesting bounded."""

from __future__ import annotations

import pytest

from core.text import (
    text_free_storable,
    text_identifier_fits,
    text_json_loads,
    text_raw_storable,
    text_storable_as_is,
)


def test_a_raw_body_keeps_nul_invalid_utf8_and_lone_surrogates_as_escapes():
    assert text_raw_storable(b'{"a": "\x00\xff"}', max_chars=100) == '{"a": "\\x00\\xff"}'
    assert text_raw_storable("x\ud800y\x00", max_chars=100) == "x\\ud800y\\x00"
    assert text_storable_as_is(text_raw_storable("\ud800\x00", max_chars=100))


def test_free_text_is_cleaned_and_clipped_identifiers_are_only_judged():
    assert text_free_storable(" M\x00-PESA\u202e\n ", max_length=4) == "M-PE"
    assert text_identifier_fits("T" * 100, max_length=100)
    assert not text_identifier_fits("T" * 101, max_length=100)
    assert not text_identifier_fits("TX\x00", max_length=100)


@pytest.mark.parametrize("document", [b"[" * 100_000, "{" * 65, b'{"a":' * 70 + b"1"])
def test_json_nested_deeper_than_any_real_payload_is_a_value_error(document):
    with pytest.raises(ValueError, match="nested more than 64 levels"):
        text_json_loads(document)


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '{"a": "' + "[" * 500 + '\\"", "b": [[1]]}'
    assert text_json_loads(text)["b"] == [[1]]


def test_an_unterminated_string_of_escaped_quotes_is_read_once_not_from_every_quote():
    # A backtracking scanner re-read the rest of the input from every quote here (a megabyte
    # took most of an hour); the scan is linear, so this answers at once with a ValueError.
    document = b'"' + b'\\"' * 500_000
    with pytest.raises(ValueError):
        text_json_loads(document)


def test_a_string_that_looks_deep_inside_an_unterminated_string_does_not_count():
    with pytest.raises(ValueError) as refused:
        text_json_loads(b'["' + b"[" * 100)
    assert "nested" not in str(refused.value)
