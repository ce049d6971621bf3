"""Base's public endpoints (*.base.org): refused by production on mainnet (8453), a warning
at start-up on Sepolia (84532). Each case starts a fresh interpreter, as a process does."""

import pytest

from core.endpoints import endpoint_is_public_base
from tests.config.test_settings import PRODUCTION, start  # noqa: F401 - the fixture

PAID = "https://base-mainnet.g.alchemy.com/v2/secret-key"
WARNING = "use Base's public Sepolia endpoint"


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://mainnet.base.org", True),
        ("https://sepolia.base.org/", True),
        ("https://MAINNET.BASE.ORG.:443/x", True),
        ("https://base.org", True),
        (PAID, False),
        ("https://notbase.org", False),
        ("https://base.org.evil.example", False),
        ("", False),
    ],
)
def test_the_public_base_hosts_are_recognised(url, public):
    assert endpoint_is_public_base(url) is public


@pytest.mark.parametrize(
    "urls",
    [
        {"BASE_SEPOLIA_RPC_URL": "https://mainnet.base.org"},
        {"BASE_SEPOLIA_RPC_URL": PAID, "BASE_SEPOLIA_RPC_URL_BACKUP": "https://mainnet.base.org"},
    ],
)
def test_production_on_base_mainnet_refuses_a_public_endpoint(start, urls):  # noqa: F811
    result = start("production", {**PRODUCTION, "CHAIN_ID": "8453", **urls})

    assert result.returncode != 0
    named = " and ".join(name for name, url in urls.items() if "base.org" in url)
    assert f"{named} point at Base's public endpoint" in result.stderr
    assert "needs a paid RPC provider's URL" in result.stderr
    assert "secret-key" not in result.stderr


def test_production_on_base_mainnet_starts_with_a_paid_endpoint(start):  # noqa: F811
    result = start("production", {**PRODUCTION, "CHAIN_ID": "8453", "BASE_SEPOLIA_RPC_URL": PAID})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["production", "8453"]
    assert WARNING not in result.stderr + result.stdout


def test_sepolia_on_the_public_endpoint_starts_with_one_warning_line(start):  # noqa: F811
    result = start("production", PRODUCTION)  # CHAIN_ID 84532, https://sepolia.base.org

    assert result.returncode == 0, result.stderr
    lines = [line for line in (result.stderr + result.stdout).splitlines() if WARNING in line]
    assert len(lines) == 1
    assert "WARNING" in lines[0] and "BASE_SEPOLIA_RPC_URL" in lines[0]
