"""core.http.client_address: the client's address through the trusted proxy hops."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from core.http import client_address, client_throttle_key


def _request(remote="10.0.0.5", xff=None):
    extra = {"REMOTE_ADDR": remote}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", **extra)


def test_no_trusted_hops_uses_remote_addr_and_ignores_forwarded_for(settings):
    settings.TRUSTED_PROXY_HOPS = 0
    assert client_address(_request(xff="203.0.113.7")) == "10.0.0.5"


def test_one_trusted_hop_takes_the_last_forwarded_entry(settings):
    settings.TRUSTED_PROXY_HOPS = 1
    assert client_address(_request(xff="198.51.100.1, 203.0.113.7")) == "203.0.113.7"


def test_forged_longer_chain_cannot_pick_the_address(settings):
    settings.TRUSTED_PROXY_HOPS = 1
    forged = "1.1.1.1, 8.8.8.8, 9.9.9.9, 203.0.113.7"
    assert client_address(_request(xff=forged)) == "203.0.113.7"


def test_two_trusted_hops_take_the_second_entry_from_the_right(settings):
    settings.TRUSTED_PROXY_HOPS = 2
    assert client_address(_request(xff="1.1.1.1, 203.0.113.7, 10.0.0.9")) == "203.0.113.7"


@pytest.mark.parametrize(
    "xff",
    ["", "not-an-ip", " , ,", "\x00", "999.1.1.1", "1.2.3.4, junk", "a" * 5000, "1.2.3.4," * 1000],
)
def test_garbage_forwarded_for_falls_back_to_remote_addr(settings, xff):
    settings.TRUSTED_PROXY_HOPS = 1
    assert client_address(_request(xff=xff)) == "10.0.0.5"


def test_missing_forwarded_for_or_too_few_entries_falls_back_to_remote_addr(settings):
    settings.TRUSTED_PROXY_HOPS = 2
    assert client_address(_request()) == "10.0.0.5"
    assert client_address(_request(xff="203.0.113.7")) == "10.0.0.5"


def test_port_and_ipv6_forms_are_normalised(settings):
    settings.TRUSTED_PROXY_HOPS = 1
    assert client_address(_request(xff="203.0.113.7:51234")) == "203.0.113.7"
    assert client_address(_request(xff="[2001:DB8::1]:443")) == "2001:db8::1"
    assert client_address(_request(xff="2001:db8::1")) == "2001:db8::1"


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("unknown", "unknown"),
    ],
)
def test_a_throttle_counts_an_ipv6_host_by_its_64_network(address, key):
    assert client_throttle_key(address) == key
