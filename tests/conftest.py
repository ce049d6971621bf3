"""Session fixtures. The PostgreSQL and Redis servers are started by the test settings
(config/settings/test.py) before Django loads; anvil by tests.support.chain_fixtures."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.support.chain_fixtures",
    "tests.support.broker",
    "tests.support.zenopay_sandbox",
]


@pytest.fixture(autouse=True)
def _clear_cache():
    """The cache is a real Redis shared by the session: start every test from empty."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def chain_settings(chain, settings):
    """Django pointed at the session's anvil and NTZS deployment (reverted after the test)."""
    settings.BASE_SEPOLIA_RPC_URL = chain.url
    settings.CHAIN_ID = 31337
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = chain.address
    settings.MINTER_PRIVATE_KEY = chain.minter_key
    settings.SAFE_ADDRESS = ""
    return chain
