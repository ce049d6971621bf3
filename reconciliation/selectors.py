"""Reads of the reconciliation app: what the indexed chain says against the books (DESIGN
§8). The lists behind Backstage's reconciliation screens: untracked mints, mints in flight,
Safe mints awaiting their record, missing mints and unexplained burns; and whether the
untracked-mint alarm is armed.

A mint log is judged only once indexed (the indexer stores blocks up to the safe head, so
every row is past the reorg window) and only when no ``MintLogClaim`` names it. Then, in
this order: in flight (the transaction of one of our mints not settled yet), covered by the
opening balance (at or below its stated block), awaiting record (executed by our Safe for an
open ``mint_requires_safe`` deposit with that wallet and amount), not read yet (whether our
Safe executed it is read once by the matching), else untracked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _
from eth_utils import is_address, to_checksum_address

from accounts.models import Wallet
from core.exceptions import ServiceError
from core.money import tzs_to_units
from deposits.models import DepositRequest
from minting.chain import ZERO_ADDRESS, ChainError
from minting.models import MintAttempt, MintLogClaim, MintTransaction
from minting.rpc import mint_client
from minting.services.token_admin import token_admin_status
from reconciliation.models import (
    ChainTransfer,
    IndexerCursor,
    ReconciliationEntry,
)

TRANSFERS = "transfers"  # the indexer's stream of Transfer logs (services.indexer.TRANSFERS)
MT = MintTransaction.Status
LIVE_ATTEMPT = (MintAttempt.Status.SIGNED, MintAttempt.Status.SENT)


def transfers_cursor() -> IndexerCursor | None:
    return IndexerCursor.objects.filter(name=TRANSFERS).first()


def _claimed() -> Exists:
    return Exists(
        MintLogClaim.objects.filter(
            chain_id=OuterRef("chain_id"),
            tx_hash=OuterRef("tx_hash"),
            log_index=OuterRef("log_index"),
        )
    )


def log_claims() -> QuerySet[MintLogClaim]:
    """The claim naming the outer ChainTransfer row's log (one claim per log at most)."""
    return MintLogClaim.objects.filter(
        chain_id=OuterRef("chain_id"), tx_hash=OuterRef("tx_hash"), log_index=OuterRef("log_index")
    )


def log_claim_superseded() -> QuerySet[MintLogClaim]:
    """A later claim superseding the one that names the outer ChainTransfer row's log."""
    return MintLogClaim.objects.filter(
        supersedes__chain_id=OuterRef("chain_id"),
        supersedes__tx_hash=OuterRef("tx_hash"),
        supersedes__log_index=OuterRef("log_index"),
    )


def _in_flight() -> Q:
    """The transaction of one of our mints not settled yet: a worker attempt still signed or
    sent (landed, short of MINT_CONFIRMATIONS: ``confirm_mints`` claims it), a Safe mint
    awaiting confirmations, or a recorded mint whose finality check has not run (a reorg may
    have moved its log to another index; the check appends the superseding claim)."""
    tx = OuterRef("tx_hash")
    return (
        Q(Exists(MintAttempt.objects.filter(tx_hash=tx, status__in=LIVE_ATTEMPT)))
        | Q(
            Exists(
                MintAttempt.objects.filter(
                    tx_hash=tx,
                    mint_transaction__status=MT.MINTED,
                    mint_transaction__finality_checked_at__isnull=True,
                )
            )
        )
        | Q(Exists(MintTransaction.objects.filter(tx_hash=tx, status=MT.AWAITING_CONFIRMATIONS)))
    )


def opening_balance_block(chain_id: int | None = None) -> int | None:
    """The block an ``opening_balance`` entry states the supply at (the highest, when there
    are several); -1 for one without a block (it covers nothing indexed); None without one."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    entries = ReconciliationEntry.objects.filter(
        chain_id=chain_id, entry_type=ReconciliationEntry.EntryType.OPENING_BALANCE
    )
    if not entries.exists():
        return None
    stated = entries.exclude(block_number__isnull=True).order_by("-block_number").first()
    return stated.block_number if stated else -1


def unclaimed_mint_logs(chain_id: int | None = None) -> QuerySet[ChainTransfer]:
    """Indexed mint logs no claim names, above the opening balance's block.

    Only rows without the claim marker (``ChainTransfer.claim``: a marked row has its claim,
    and claims are never deleted) are looked at, through their partial index; the claim is
    still looked up for each of them, so a claim made since the last marking counts at once."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    logs = ChainTransfer.objects.filter(
        chain_id=chain_id, kind=ChainTransfer.Kind.MINT, claim__isnull=True
    ).exclude(_claimed())
    covered = opening_balance_block(chain_id)
    if covered is not None:
        logs = logs.filter(block_number__gt=covered)
    return logs


def mints_in_flight(chain_id: int | None = None) -> QuerySet[ChainTransfer]:
    return unclaimed_mint_logs(chain_id).filter(_in_flight()).order_by("block_number", "log_index")


def _settled_unclaimed(chain_id: int | None = None) -> QuerySet[ChainTransfer]:
    return unclaimed_mint_logs(chain_id).exclude(_in_flight())


def mint_logs_unread(chain_id: int | None = None) -> QuerySet[ChainTransfer]:
    """Settled, unclaimed mint logs whose transaction was not yet checked for our Safe."""
    return _settled_unclaimed(chain_id).filter(safe_executed__isnull=True).order_by("block_number")


def open_safe_deposits_for(to_address: str, amount_units) -> list[DepositRequest]:
    """Open ``mint_requires_safe`` deposits a mint of this amount to this wallet could be
    (oldest first)."""
    units = int(amount_units)
    if units % tzs_to_units(1):
        return []
    return list(
        DepositRequest.objects.filter(
            status=DepositRequest.Status.MINT_REQUIRES_SAFE,
            wallet__address__iexact=to_address,
            amount_tzs=units // tzs_to_units(1),
        )
        .select_related("wallet")
        .order_by("created_at")
    )


def _safe_split(chain_id: int | None, *, awaiting: bool, limit: int) -> list[ChainTransfer]:
    found = []
    queryset = (
        _settled_unclaimed(chain_id)
        .filter(safe_executed=True)
        .order_by("block_number", "log_index")
        .iterator(chunk_size=500)
    )
    for log in queryset:
        if bool(open_safe_deposits_for(log.to_address, log.amount_units)) == awaiting:
            found.append(log)
            if len(found) >= limit:
                break
    return found


def mints_awaiting_record(chain_id: int | None = None, *, limit: int = 500) -> list[ChainTransfer]:
    """Mints our Safe executed for an open ``mint_requires_safe`` deposit that the matching
    could not record by itself (a token without deposit references and no export of that
    exact call, several deposits it could be): a person records the hash."""
    return _safe_split(chain_id, awaiting=True, limit=limit)


def untracked_mints(chain_id: int | None = None, *, limit: int = 500) -> list[ChainTransfer]:
    """Mint logs nothing explains: not ours, not in flight, not a Safe mint awaiting its
    record, not covered by the opening balance. Each needs a reconciliation entry."""
    not_safe = list(
        _settled_unclaimed(chain_id)
        .filter(safe_executed=False)
        .order_by("block_number", "log_index")[:limit]
    )
    by_safe = _safe_split(chain_id, awaiting=False, limit=limit)
    return sorted(not_safe + by_safe, key=lambda log: (log.block_number, log.log_index))[:limit]


def missing_mints(chain_id: int | None = None) -> QuerySet[MintLogClaim]:
    """``minted`` deposits whose claimed log the indexer does not have although it indexed
    past it: the claim was made before the indexer's last run read its head (a claim needs
    MINT_CONFIRMATIONS, the indexer stores every block that has them)."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    cursor = transfers_cursor()
    if cursor is None:
        return MintLogClaim.objects.none()
    indexed = ChainTransfer.objects.filter(
        chain_id=chain_id,
        tx_hash=OuterRef("tx_hash"),
        log_index=OuterRef("log_index"),
        kind=ChainTransfer.Kind.MINT,
    )
    return (
        MintLogClaim.objects.filter(
            chain_id=chain_id,
            deposit__status=DepositRequest.Status.MINTED,
            superseded_by__isnull=True,
            claimed_at__lt=cursor.updated_at,
        )
        .exclude(Exists(indexed))
        .select_related("deposit")
        .order_by("claimed_at")
    )


def unexplained_burns(chain_id: int | None = None) -> QuerySet[ChainTransfer]:
    """Burns and wipes (Transfer to zero) without a reconciliation entry on their log."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    explained = ReconciliationEntry.objects.filter(
        chain_id=OuterRef("chain_id"),
        tx_hash=OuterRef("tx_hash"),
        log_index=OuterRef("log_index"),
    )
    return (
        ChainTransfer.objects.filter(chain_id=chain_id, kind=ChainTransfer.Kind.BURN)
        .exclude(Exists(explained))
        .order_by("block_number", "log_index")
    )


@dataclass(frozen=True)
class Armed:
    armed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.armed


def untracked_alarm_armed(chain_id: int | None = None) -> Armed:
    """Whether an untracked mint raises the alarm. Not while the token has supply from
    before this system that no ``opening_balance`` entry states (every old mint would be
    called untracked: thousands of alerts on the first run), nor while that supply is
    unknown. The reason is a sentence for the dashboard."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    stated = opening_balance_block(chain_id)
    if stated is not None and stated >= 0:
        return Armed(
            True,
            _("An opening balance entry states the supply at block %(block)s.") % {"block": stated},
        )
    if stated is not None:
        return Armed(True, _("An opening balance entry states the supply before indexing."))
    cursor = transfers_cursor()
    if cursor is None or cursor.first_block is None:
        return Armed(False, _("The chain has not been indexed yet."))
    if cursor.supply_before_units is None:
        return Armed(
            False,
            _(
                "The token's supply before block %(block)s, where indexing began, could not be "
                "read yet (old blocks need a node that keeps their state); record an opening "
                "balance entry to arm the untracked-mint alarm."
            )
            % {"block": cursor.first_block},
        )
    if cursor.supply_before_units > 0:
        return Armed(
            False,
            _(
                "The token had %(units)s base units of supply before block %(block)s, where "
                "indexing began, and no opening balance entry states it; record one (two "
                "people) to arm the untracked-mint alarm."
            )
            % {"units": cursor.supply_before_units, "block": cursor.first_block},
        )
    return Armed(
        True,
        _("The token had no supply before block %(block)s, where indexing began.")
        % {"block": cursor.first_block},
    )


@dataclass(frozen=True)
class ClaimOnChain:
    claim: MintLogClaim
    indexed_block: int | None  # the block the indexer found the log in
    state: str  # "indexed", "missing" (passed without finding it) or "not indexed yet"


def claims_on_chain(claims, *, limit: int) -> list[ClaimOnChain]:
    """A deposit's own reconciliation facts: whether the indexer holds each of its claimed
    mint logs, or passed the claim without finding it (a missing mint, as ``missing_mints``
    decides it). One query for the claims with their block, one for the cursor."""
    cursor = transfers_cursor()
    rows = claims.annotate(
        indexed_block=ChainTransfer.objects.filter(
            chain_id=OuterRef("chain_id"),
            tx_hash=OuterRef("tx_hash"),
            log_index=OuterRef("log_index"),
            kind=ChainTransfer.Kind.MINT,
        ).values("block_number")[:1]
    )
    facts = []
    for claim in rows[:limit]:
        if claim.indexed_block is not None:
            state = "indexed"
        elif cursor is not None and claim.claimed_at < cursor.updated_at:
            state = "missing"
        else:
            state = "not indexed yet"
        facts.append(ClaimOnChain(claim=claim, indexed_block=claim.indexed_block, state=state))
    return facts


# --- Impacted addresses (issue 15 point 2) ------------------------------------------------------
#
# "Follow the money" after a suspicious mint: an address's transfers, the deposits and people
# behind it, and the transfers onward from a transaction. Reads the indexer's ``ChainTransfer``
# rows only (the chain state beside them is read live, ``address_chain_states``); addresses
# are compared in their EIP-55 spelling, the one the indexer stores, so each read is a range
# of the from/to address indexes rather than a scan.

IMPACT_PAGE_SIZE = 50  # an address's transfers per page
ONWARD_HOPS_DEFAULT = 2
ONWARD_HOPS_MAX = 5
ONWARD_ROWS_PER_HOP = 100  # a busy address (an exchange) must not make the page unbounded
LINKED_DEPOSITS_MAX = 100
STATE_READS_MAX = 25  # live chain reads for one page: one round trip each


_TX_HASH = re.compile(r"0x[0-9a-f]{64}")


class ImpactQueryError(ValueError):
    """An address or a transaction hash that cannot be looked up; the message says why."""


def impact_address_normalise(value: str) -> str:
    """An address in the EIP-55 spelling the indexer stores; ImpactQueryError otherwise."""
    text = (value or "").strip()
    if not is_address(text):
        raise ImpactQueryError(
            _("%(value)s is not an address (0x followed by 40 hex digits).") % {"value": text[:80]}
        )
    address = to_checksum_address(text)
    if address == ZERO_ADDRESS:
        raise ImpactQueryError(
            _(
                "The zero address is where mints come from and burns go: look up the "
                "transaction instead."
            )
        )
    return address


def impact_tx_hash_normalise(value: str) -> str:
    """A transaction hash in the indexer's spelling (0x, lowercase); ImpactQueryError otherwise."""
    text = (value or "").strip().lower()
    if not _TX_HASH.fullmatch(text):
        raise ImpactQueryError(
            _("%(value)s is not a transaction hash (0x followed by 64 hex digits).")
            % {"value": text[:80]}
        )
    return text


@dataclass(frozen=True)
class TransferPosition:
    """Where a log sits on chain, ``(block, log index)``: unique per chain (a log index is
    unique within its block), so it is an exact keyset for paging newest first."""

    block_number: int
    log_index: int

    @property
    def token(self) -> str:
        return f"{self.block_number}-{self.log_index}"

    @classmethod
    def parse(cls, token: str | None) -> TransferPosition | None:
        """A page token from a URL; None (the first page) for anything else."""
        match = re.fullmatch(r"([0-9]{1,19})-([0-9]{1,9})", (token or "").strip())
        return cls(int(match[1]), int(match[2])) if match else None

    @classmethod
    def of(cls, row: ChainTransfer) -> TransferPosition:
        return cls(row.block_number, row.log_index)


@dataclass(frozen=True)
class AddressTransfers:
    address: str
    rows: list[ChainTransfer]  # newest first
    older: TransferPosition | None  # the next page's token; None on the last page


def address_transfers(
    *,
    address: str,
    before: TransferPosition | None = None,
    limit: int = IMPACT_PAGE_SIZE,
    chain_id: int | None = None,
) -> AddressTransfers:
    """An address's indexed transfers, in and out, newest first, ``limit`` per page, older
    than ``before`` (keyset paging: every page costs the same however deep, unlike OFFSET).

    Out and in are read apart, each a backward range of its own index (``chain_transfer_from``
    / ``chain_transfer_to``: address, block) stopped after ``limit + 1`` rows, then merged:
    an OR of the two would make PostgreSQL collect and sort every row of a busy address.
    A transfer to oneself is in both and listed once."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    address = impact_address_normalise(address)
    older_than = Q()
    if before is not None:
        older_than = Q(block_number__lte=before.block_number) & (
            Q(block_number__lt=before.block_number)
            | Q(block_number=before.block_number, log_index__lt=before.log_index)
        )  # the first term bounds the index range; the second is the exact keyset
    order = ("-block_number", "-log_index")
    found: dict[int, ChainTransfer] = {}
    for side in ("from_address", "to_address"):
        rows = ChainTransfer.objects.filter(older_than, chain_id=chain_id, **{side: address})
        for row in rows.order_by(*order)[: limit + 1]:
            found[row.pk] = row
    merged = sorted(found.values(), key=lambda r: (r.block_number, r.log_index), reverse=True)
    page = merged[:limit]
    older = TransferPosition.of(page[-1]) if len(merged) > limit else None
    return AddressTransfers(address=address, rows=page, older=older)


@dataclass(frozen=True)
class AddressLinks:
    """What the books know of an address: every registration of it as a customer's wallet
    (verified or not: a failed registration is a lead too) and the deposits to it."""

    wallets: list[Wallet]
    deposits: list[DepositRequest]  # newest first, at most LINKED_DEPOSITS_MAX
    deposits_more: bool


def address_links(*, address: str, limit: int = LINKED_DEPOSITS_MAX) -> AddressLinks:
    address = impact_address_normalise(address)
    # Wallet addresses are stored in EIP-55 (accounts.Wallet.address): the (chain, address)
    # index answers both reads.
    wallets = list(
        Wallet.objects.filter(chain=Wallet.Chain.BASE, address=address)
        .select_related("user")
        .order_by("-verified_at", "created_at")
    )
    deposits = list(
        DepositRequest.objects.filter(wallet__chain=Wallet.Chain.BASE, wallet__address=address)
        .select_related("user", "wallet")
        .order_by("-created_at")[: limit + 1]
    )
    return AddressLinks(
        wallets=wallets, deposits=deposits[:limit], deposits_more=len(deposits) > limit
    )


def address_customers(addresses: list[str]) -> dict[str, Wallet]:
    """For each address, the verified wallet naming it (its owner is the customer), if any."""
    wallets = Wallet.objects.filter(
        chain=Wallet.Chain.BASE, address__in=addresses, verified_at__isnull=False
    ).select_related("user")
    return {wallet.address: wallet for wallet in wallets}


@dataclass(frozen=True)
class ChainState:
    """An address as the token reports it now. ``unavailable`` is the sentence shown when it
    could not be read (then the figures are None, never 0 or False)."""

    address: str
    balance_units: int | None = None
    frozen: bool | None = None
    blacklisted: bool | None = None
    unavailable: str = ""


def address_chain_states(
    addresses: list[str], *, limit: int = STATE_READS_MAX
) -> dict[str, ChainState]:
    """Balance, ``isFrozen`` and ``isBlacklisted`` of the first ``limit`` addresses, read
    through ``token_admin_status`` on one client. An unreadable chain gives each address the
    same sentence (a page shows it; it never fails the page); the addresses past ``limit``
    are not read (the caller says so)."""
    wanted = addresses[:limit]
    if not wanted:
        return {}
    try:
        client = mint_client()
    except ChainError as exc:
        sentence = _("The chain could not be read (%(error)s); try again shortly.") % {"error": exc}
        return {a: ChainState(address=a, unavailable=sentence) for a in wanted}
    states = {}
    for address in wanted:
        try:
            state = token_admin_status(address=address, client=client)
        except (ChainError, ServiceError) as exc:
            states[address] = ChainState(
                address=address,
                unavailable=_("The chain could not be read (%(error)s); try again shortly.")
                % {"error": exc},
            )
            continue
        states[address] = ChainState(
            address=address,
            balance_units=state["balance_units"],
            frozen=state["frozen"],
            blacklisted=state["blacklisted"],
        )
    return states


@dataclass(frozen=True)
class Hop:
    number: int  # 1: out of the transaction's recipients; 2: out of hop 1's recipients; ...
    rows: list[ChainTransfer]  # oldest first
    capped: bool  # more transfers existed than ONWARD_ROWS_PER_HOP: the rest are not shown
    followed: list[str]  # the addresses whose outgoing transfers this hop lists


@dataclass(frozen=True)
class TransactionImpact:
    tx_hash: str
    transfers: list[ChainTransfer]  # the transaction's own Transfer logs, in log order
    addresses: list[str]  # every address they and the hops touched (zero excluded), in order
    hops: list[Hop]


def _recipients(rows: list[ChainTransfer]) -> dict[str, TransferPosition]:
    """Each recipient (burns excluded) and the position of its first receipt among ``rows``."""
    reached: dict[str, TransferPosition] = {}
    for row in sorted(rows, key=lambda r: (r.block_number, r.log_index)):
        if row.to_address != ZERO_ADDRESS and row.to_address not in reached:
            reached[row.to_address] = TransferPosition.of(row)
    return reached


def transaction_impact(
    *,
    tx_hash: str,
    hops: int = ONWARD_HOPS_DEFAULT,
    per_hop: int = ONWARD_ROWS_PER_HOP,
    chain_id: int | None = None,
) -> TransactionImpact:
    """A transaction's indexed transfers, the addresses they touched, and the transfers
    onward from its recipients for ``hops`` hops (1 to ONWARD_HOPS_MAX).

    "Onward" means: hop 1 is every transfer **out of** each address that received tokens
    in the transaction, at a later position on chain than that receipt (a later block, or
    the same block at a higher log index); hop 2 the same out of hop 1's recipients after
    their receipt; and so on. It lists all outgoing transfers after the receipt, whatever
    their amount: it does not try to trace which tokens are "the" minted ones (they are
    fungible; an address that held a balance before mixes both). An address is followed
    once, from its first receipt (reached again later, it adds nothing new). Burns end a
    path. Each hop shows at most ``per_hop`` transfers, the earliest ones, and says when
    it was capped; the next hop follows only the recipients shown."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    tx_hash = impact_tx_hash_normalise(tx_hash)
    hops = max(1, min(int(hops), ONWARD_HOPS_MAX))
    transfers = list(
        ChainTransfer.objects.filter(chain_id=chain_id, tx_hash=tx_hash).order_by("log_index")
    )
    seen_rows = {row.pk for row in transfers}
    addresses: list[str] = []

    def touch(rows: list[ChainTransfer]) -> None:
        for row in rows:
            for address in (row.from_address, row.to_address):
                if address != ZERO_ADDRESS and address not in addresses:
                    addresses.append(address)

    touch(transfers)
    followed: set[str] = set()
    frontier = _recipients(transfers)
    result: list[Hop] = []
    for number in range(1, hops + 1):
        frontier = {a: p for a, p in frontier.items() if a not in followed}
        if not frontier:
            break
        followed.update(frontier)
        candidates: dict[int, ChainTransfer] = {}
        for address, received in frontier.items():
            later = Q(block_number__gt=received.block_number) | Q(
                block_number=received.block_number, log_index__gt=received.log_index
            )
            rows = (
                ChainTransfer.objects.filter(
                    later,
                    chain_id=chain_id,
                    from_address=address,
                    block_number__gte=received.block_number,  # the index's range
                )
                .exclude(pk__in=seen_rows)
                .order_by("block_number", "log_index")[: per_hop + 1]
            )
            for row in rows:
                candidates[row.pk] = row
        ordered = sorted(candidates.values(), key=lambda r: (r.block_number, r.log_index))
        shown = ordered[:per_hop]
        seen_rows.update(row.pk for row in shown)
        touch(shown)
        result.append(
            Hop(
                number=number,
                rows=shown,
                capped=len(ordered) > per_hop,
                followed=list(frontier),
            )
        )
        frontier = _recipients(shown)
    return TransactionImpact(tx_hash=tx_hash, transfers=transfers, addresses=addresses, hops=result)


def transaction_deposits(*, tx_hash: str) -> list[DepositRequest]:
    """The deposits this transaction minted (their recorded ``mint_tx_hash``)."""
    tx_hash = impact_tx_hash_normalise(tx_hash)
    return list(
        DepositRequest.objects.filter(mint_tx_hash=tx_hash)
        .select_related("user", "wallet")
        .order_by("created_at")[:LINKED_DEPOSITS_MAX]
    )
