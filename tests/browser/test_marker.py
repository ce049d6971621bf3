"""Every test in tests/browser/ is marked ``browser`` by its conftest, so `make test-fast`
(``-m "not chain and not slow and not browser"``) leaves them all out."""

from __future__ import annotations


def test_a_test_in_this_directory_is_marked_browser(request):
    assert request.node.get_closest_marker("browser") is not None
    assert "browser" not in request.fixturenames  # marking it started no Chromium
