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


@pytest.fixture
def staff_otp_login():
    """Log a test client in as ``user`` with a confirmed TOTP device and an OTP-verified
    session (what passing the second factor leaves behind). Returns the device."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def login(client, user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return device

    return login
