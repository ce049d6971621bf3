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

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from core.money import tzs_to_units
from deposits.models import DepositRequest
from minting.models import MintAttempt, MintLogClaim, MintTransaction
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
