"""The ``chain`` and ``slow`` markers `make test-fast` deselects (tests/conftest.py): every
listed slow test still exists (a renamed one would silently run again in the fast suite), and
a test using the chain fixtures is marked ``chain``."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import CHAIN_FIXTURES, SLOW_FILES, SLOW_TESTS

REPO = Path(__file__).resolve().parents[1]


def test_every_listed_slow_test_and_file_exists():
    for test_id in SLOW_TESTS:
        path, name = test_id.split("::")
        assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.M), test_id
    for path in SLOW_FILES:
        assert (REPO / path).is_file(), path


def test_a_test_using_a_chain_fixture_is_marked_chain(request, chain):
    assert CHAIN_FIXTURES & set(request.node.fixturenames)
    assert request.node.get_closest_marker("chain") is not None
