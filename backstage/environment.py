"""Which environment a Backstage page belongs to, for the banner on every page.

The chain decides the word: it is what makes a mint worth money. 31337 (anvil) is LOCAL,
84532 (Base Sepolia) TESTNET, 8453 (Base) PRODUCTION. The settings profile is shown next to
it, so a production profile on the test network (a rehearsal) reads "TESTNET · production
profile"; on a chain not in the table the profile decides, and the production profile says
PRODUCTION (an unknown chain under production settings is treated as real money).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

LOCAL = "LOCAL"
TESTNET = "TESTNET"
PRODUCTION = "PRODUCTION"
CHAIN_ENVIRONMENTS = {31337: LOCAL, 84532: TESTNET, 8453: PRODUCTION}


@dataclass(frozen=True)
class Environment:
    name: str  # LOCAL, TESTNET or PRODUCTION
    chain_id: int
    profile: str  # the settings profile: local, test or production

    @property
    def css_class(self) -> str:
        return f"backstage-env-{self.name.lower()}"


def backstage_environment() -> Environment:
    chain_id = settings.CHAIN_ID
    profile = getattr(settings, "PROFILE", "")
    name = CHAIN_ENVIRONMENTS.get(chain_id)
    if name is None:
        name = PRODUCTION if profile == "production" else TESTNET
    return Environment(name=name, chain_id=chain_id, profile=profile)
