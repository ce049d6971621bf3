"""Who holds the token's roles (issue 15 point 4; the runbook's "verify roles and
ownership"). Reads only: nothing here writes a row or moves an alert (the alert on an
unexpected holder is ``reconciliation.services.alerts.token_role_holders_check``, run by the
indexer; it takes its expected and current holders from here, so both say the same).

Three sources side by side:

- the indexed ``RoleGranted`` / ``RoleRevoked`` events (``TokenRoleEvent``): who the indexer
  last saw granted each role, as fresh as the ``roles`` cursor;
- the chain now: ``hasRole`` for every (role, address) the events or the expected holders
  name, read in JSON-RPC batches (the token is ``AccessControl`` without enumeration, so
  the chain cannot list holders by itself: an address that appears in no event and in no
  expectation cannot be asked about — the events are how a grant becomes known);
- ``TOKEN_ROLE_EXPECTED_HOLDERS`` (or, unset, the defaults of ``role_holders_expected``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _
from eth_utils import to_checksum_address

from minting.chain import ChainError, account_address, hex_str, role_id
from minting.models import TokenDeployment
from minting.rpc import mint_client
from reconciliation.models import IndexerCursor, TokenRoleEvent
from reconciliation.services.indexer import ROLES

# The roles of the NTZS token, in the order the report lists them.
TOKEN_ROLES = (
    "DEFAULT_ADMIN_ROLE",
    "MINTER_ROLE",
    "PAUSER_ROLE",
    "FREEZER_ROLE",
    "BLACKLISTER_ROLE",
    "WIPER_ROLE",
    "BURNER_ROLE",
)


def _role_names() -> dict[str, str]:
    """0x-hex role id -> name, for the token's roles and any role the expectations name."""
    names = [*TOKEN_ROLES, *settings.TOKEN_ROLE_EXPECTED_HOLDERS]
    return {hex_str(role_id(name)).lower(): name for name in names}


def role_holders_expected() -> dict[str, set[str]]:
    """Role name -> lower-case addresses expected to hold it: TOKEN_ROLE_EXPECTED_HOLDERS,
    or when unset the minter key for MINTER_ROLE, and the recorded deployer and SAFE_ADDRESS
    for every role. The one place the expected holders are computed (the alert and the
    report both call it)."""
    configured = settings.TOKEN_ROLE_EXPECTED_HOLDERS
    if configured:
        return {role: {a.lower() for a in addresses} for role, addresses in configured.items()}
    everyone = set()
    if settings.SAFE_ADDRESS:
        everyone.add(settings.SAFE_ADDRESS.lower())
    deployment = TokenDeployment.objects.filter(chain_id=settings.CHAIN_ID).order_by("-pk").first()
    if deployment is not None:
        everyone.add(deployment.deployer_address.lower())
    expected = {role: set(everyone) for role in TOKEN_ROLES}
    if settings.MINTER_PRIVATE_KEY:
        expected["MINTER_ROLE"].add(account_address(settings.MINTER_PRIVATE_KEY).lower())
    return expected


def role_holders_current(*, chain_id: int) -> dict[tuple[str, str], bool]:
    """(role name — or 0x-hex id for a role not named here —, lower-case account) -> holds,
    from the latest indexed event of each pair."""
    names = _role_names()
    holds: dict[tuple[str, str], bool] = {}
    events = (
        TokenRoleEvent.objects.filter(chain_id=chain_id)
        .order_by("block_number", "log_index")
        .values_list("role", "account", "kind")
    )
    for role, account, kind in events.iterator():
        pair = (names.get(role.lower(), role.lower()), account.lower())
        holds[pair] = kind == TokenRoleEvent.Kind.GRANTED
    return holds


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleHolder:
    """One (role, address) any source names. ``on_chain`` is None when the chain could not
    be read (the row then rests on the indexed events alone)."""

    role: str
    account: str  # EIP-55
    indexed: bool  # the latest indexed event of the pair is a grant
    on_chain: bool | None  # hasRole now
    expected: bool

    @property
    def holds(self) -> bool:
        """Holds the role: what the chain says, or the events when it could not be read."""
        return self.indexed if self.on_chain is None else self.on_chain

    @property
    def unexpected(self) -> bool:
        return self.holds and not self.expected

    @property
    def expected_missing(self) -> bool:
        return self.expected and not self.holds

    @property
    def disagreement(self) -> bool:
        return self.on_chain is not None and self.on_chain != self.indexed

    @property
    def findings(self) -> list[str]:
        """What a person should know about the row, in words; empty when all agree."""
        found = []
        if self.unexpected:
            found.append(_("Unexpected holder: not among the expected holders of this role."))
        if self.expected_missing and self.on_chain is None:
            found.append(_("Expected holder without a grant in the indexed events."))
        elif self.expected_missing:
            found.append(_("Expected holder that does not hold the role."))
        if self.disagreement and self.on_chain:
            found.append(
                _(
                    "The chain says it holds the role, the indexed events do not show the "
                    "grant: the indexer is behind, or missed it."
                )
            )
        elif self.disagreement:
            found.append(
                _(
                    "The indexed events say it holds the role, the chain says it does not: "
                    "the indexer is behind (a revocation not indexed yet), or missed it."
                )
            )
        if self.on_chain is None and (self.indexed or self.expected):
            found.append(_("Not confirmed on chain: the chain could not be read."))
        return found


@dataclass(frozen=True)
class TokenRolesReport:
    chain_id: int
    contract_address: str
    holders: list[RoleHolder]  # role order of TOKEN_ROLES (others after), then account
    expected: dict[str, set[str]]
    expected_configured: bool  # TOKEN_ROLE_EXPECTED_HOLDERS set (else the defaults)
    cursor: IndexerCursor | None  # the roles stream's cursor: how fresh the events are
    head: int | None  # the chain's latest block when read; None when unread
    chain_error: str = ""  # why the chain could not be read
    roles: tuple[str, ...] = field(default=TOKEN_ROLES)

    @property
    def unexpected(self) -> list[RoleHolder]:
        return [h for h in self.holders if h.unexpected]

    @property
    def expected_missing(self) -> list[RoleHolder]:
        return [h for h in self.holders if h.expected_missing]

    @property
    def disagreements(self) -> list[RoleHolder]:
        return [h for h in self.holders if h.disagreement]

    @property
    def blocks_behind(self) -> int | None:
        """Blocks between the chain's head and the last indexed block of the roles stream
        (the indexer stays a confirmation window behind on purpose)."""
        if self.head is None or self.cursor is None:
            return None
        return max(self.head - self.cursor.block_number, 0)

    def holders_of(self, role: str) -> list[RoleHolder]:
        return [h for h in self.holders if h.role == role and h.holds]

    @property
    def refusal(self) -> str:
        """The sentence ``manage.py token_roles`` exits non-zero with; empty when neither an
        unexpected holder exists nor the chain was unreadable."""
        sentences = []
        if self.chain_error:
            sentences.append(
                _(
                    "The chain could not be read (%(error)s): no holder is confirmed; run it "
                    "again when the node answers."
                )
                % {"error": self.chain_error.rstrip(".")}
            )
        if self.unexpected:
            pairs = ", ".join(f"{h.account} ({h.role})" for h in self.unexpected)
            sentences.append(
                _(
                    "%(count)d unexpected role holder(s): %(pairs)s; revoke the role or add "
                    "the address to TOKEN_ROLE_EXPECTED_HOLDERS if it is meant to hold it."
                )
                % {"count": len(self.unexpected), "pairs": pairs}
            )
        return " ".join(sentences)


def _role_bytes(role: str) -> bytes:
    if role.startswith("0x") and len(role) == 66:
        return bytes.fromhex(role[2:])
    return role_id(role)


def _sort_key(roles: tuple[str, ...]):
    order = {name: i for i, name in enumerate(roles)}
    return lambda h: (order.get(h.role, len(order)), h.role, h.account.lower())


def token_roles_report(*, client_factory=mint_client) -> TokenRolesReport:
    """Every role holder the indexed events or the expectations name, each confirmed with
    ``hasRole`` on chain now (one batched read of every role for every such address, so a
    grant the indexer has not reached yet still shows for an address already known)."""
    chain_id = settings.CHAIN_ID
    expected = role_holders_expected()
    indexed = role_holders_current(chain_id=chain_id)
    roles = tuple(dict.fromkeys([*TOKEN_ROLES, *expected, *(role for role, _ in indexed)]))
    accounts = sorted(
        {a for _, a in indexed} | {a for addresses in expected.values() for a in addresses}
    )
    pairs = [(role, account) for role in roles for account in accounts]
    on_chain: dict[tuple[str, str], bool] = {}
    head, chain_error = None, ""
    contract_address = settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA or ""
    try:
        client = client_factory()
        contract_address = client.address
        head = client.head()
        answers = client.views(
            [("hasRole", (_role_bytes(role), to_checksum_address(a))) for role, a in pairs]
        )
        on_chain = dict(zip(pairs, (bool(answer) for answer in answers), strict=True))
    except ChainError as exc:
        head, chain_error = None, str(exc)
    holders = []
    for pair in pairs:
        role, account = pair
        row = RoleHolder(
            role=role,
            account=to_checksum_address(account),
            indexed=indexed.get(pair, False),
            on_chain=on_chain.get(pair) if not chain_error else None,
            expected=account in expected.get(role, set()),
        )
        if row.indexed or row.expected or row.on_chain:
            holders.append(row)
    holders.sort(key=_sort_key(roles))
    cursor = IndexerCursor.objects.filter(name=ROLES, chain_id=chain_id).first()
    return TokenRolesReport(
        chain_id=chain_id,
        contract_address=contract_address,
        holders=holders,
        expected=expected,
        expected_configured=bool(settings.TOKEN_ROLE_EXPECTED_HOLDERS),
        cursor=cursor,
        head=head,
        chain_error=chain_error,
        roles=roles,
    )
