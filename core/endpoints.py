"""Which JSON-RPC endpoints may carry the mint pipeline (DESIGN §10; docs/runbook.md).

Base's public endpoints (``mainnet.base.org``, ``sepolia.base.org``) are rate-limited, refuse
JSON-RPC batches above about 100 items and come with no service level: fine for trying
Sepolia, never for minting real money. Production refuses them on Base mainnet; on Sepolia
the process logs a warning at start-up (a log line, not a system check, so
``check --deploy --fail-level WARNING`` still passes in CI with the public Sepolia URL).
Pure functions: the settings import this module before Django is set up.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

BASE_MAINNET_CHAIN_ID = 8453
BASE_SEPOLIA_CHAIN_ID = 84532
RPC_URL_SETTINGS = ("BASE_SEPOLIA_RPC_URL", "BASE_SEPOLIA_RPC_URL_BACKUP")

logger = logging.getLogger(__name__)


def endpoint_is_public_base(url: str) -> bool:
    """True for a URL on Base's public endpoints (base.org or any of its subdomains)."""
    host = (urlsplit(url or "").hostname or "").rstrip(".").lower()
    return host == "base.org" or host.endswith(".base.org")


def public_base_endpoints(values: dict) -> list[str]:
    """The names among RPC_URL_SETTINGS whose value in ``values`` is a public Base endpoint."""
    return [name for name in RPC_URL_SETTINGS if endpoint_is_public_base(values.get(name, ""))]


def public_endpoint_refusal(*, profile: str, chain_id: int | None, values: dict) -> str:
    """The one sentence production refuses to start with; "" when the endpoints are fine."""
    public = public_base_endpoints(values)
    if profile != "production" or chain_id != BASE_MAINNET_CHAIN_ID or not public:
        return ""
    return (
        f"{' and '.join(public)} point at Base's public endpoint (*.base.org), which is "
        f"rate-limited and refuses large batches; on CHAIN_ID {BASE_MAINNET_CHAIN_ID} the "
        f"production profile needs a paid RPC provider's URL."
    )


def public_endpoint_warning_log(*, chain_id: int | None, values: dict) -> bool:
    """Log one WARNING when Sepolia runs on a public Base endpoint; True when it did.
    Called once per process, from the minting app's ready()."""
    public = public_base_endpoints(values)
    if chain_id != BASE_SEPOLIA_CHAIN_ID or not public:
        return False
    logger.warning(
        "%s use Base's public Sepolia endpoint: it is rate-limited and refuses JSON-RPC "
        "batches above about 100 items, so minting will be slow and will back off; use a "
        "paid provider for anything beyond a trial.",
        " and ".join(public),
    )
    return True
