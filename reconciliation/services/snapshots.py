"""Supply snapshots (DESIGN §8): ``On-Chain Supply == DB Minted + Reconciled``, proven at a
block every few minutes, with our mints in flight shown apart.

One snapshot, at block N = the lower of the safe block (the head less MINT_CONFIRMATIONS, as
the indexer and the worker count it) and the indexer's ``transfers`` cursor:

* on-chain supply: ``totalSupply`` at N, and the balances of ``TREASURY_ADDRESSES`` at N
  (for the circulating supply). A refusal (RPC down, a pruned node without N's state) stores
  NULL with the reason: unavailable, never 0.
* DB minted (TZS): the deposits' amounts of the current (not superseded) mint log claims
  naming a deposit whose log the indexer holds (as a mint) at or below N — summed over the
  indexed logs' claim markers (``ChainTransfer.claim``, ``books_at``), not over the claims.
  Before the indexer has a cursor (it never ran) every current deposit claim counts: a
  claim is made only once its log has MINT_CONFIRMATIONS, so it lies at or below the safe
  block. A claim whose log the indexer passed without finding is a "missing mint"
  (reconciliation.selectors) and is not counted: the chain does not count it either.
* minted deposits (TZS): the sum of ``minted`` deposits, a cross-check of the claims.
* reconciled (base units): the entries' signed amounts, each from its block on (an entry
  without a block always counts).
* in flight (TZS): indexed mint logs at or below N of our own transactions not claimed yet
  (a worker mint short of its confirmations, a Safe mint awaiting them): on chain already,
  in the books soon. Shown apart and kept out of the discrepancy.
* discrepancy (base units) = supply - (DB minted x 10**18 + reconciled + in flight).

All totals are SQL aggregates over all rows. ``Supply discrepancy`` is logged at ERROR and
the ``supply discrepancy`` alert opens only when a discrepancy survives two consecutive
snapshots that could be read (one ERROR line per change of the amount); a snapshot with
discrepancy 0 resolves it; an unavailable one leaves it as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import BigIntegerField, Exists, OuterRef, Q, Subquery, Sum
from eth_utils import is_address, to_checksum_address
from web3.exceptions import Web3Exception

from core.alerts import SUPPLY_DISCREPANCY
from core.models import Alert
from core.money import MoneyError, tzs_to_units, units_to_tzs
from core.services import alert_raise, alert_resolve
from deposits.models import DepositRequest
from minting.chain import ChainError, NtzsClient
from minting.models import MintLogClaim
from minting.rpc import mint_client
from reconciliation.models import ChainTransfer, ReconciliationEntry, SupplySnapshot
from reconciliation.selectors import mints_in_flight, transfers_cursor
from reconciliation.services.indexer import safe_block

logger = logging.getLogger("reconciliation")

SUPPLY_ALERT = SUPPLY_DISCREPANCY  # "supply discrepancy", in core's registry of kinds


# --- Chain side ------------------------------------------------------------------------------


def treasury_addresses() -> list[str]:
    """TREASURY_ADDRESSES, checksummed; a value that is not an address is a ChainError (the
    circulating supply cannot be computed), named in the snapshot's reason."""
    addresses = []
    for value in settings.TREASURY_ADDRESSES:
        if not is_address(value):
            raise ChainError(f"TREASURY_ADDRESSES holds {value!r}, which is not an address.")
        addresses.append(to_checksum_address(value))
    return addresses


def _balance_at(client: NtzsClient, address: str, block: int) -> int:
    try:
        return client.contract.functions.balanceOf(address).call(block_identifier=block)
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainError(
            f"The balance of {address} at block {block} could not be read "
            f"({type(exc).__name__}); the node may not keep that block's state."
        ) from None


# How far the indexer may trail the safe head before a snapshot stops calling its figure
# current: about 15 minutes of Base's 2-second blocks, the public API's freshness window. A
# stalled indexer (the breaker open, a lagging node) would otherwise have every new snapshot
# read the supply at its old cursor and the API serve that old figure as fresh.
INDEXER_MAX_LAG_BLOCKS = 450


def _chain_read(client: NtzsClient) -> tuple[int, int, int | None, str]:
    """(N, totalSupply at N, treasury balances at N, why those are unknown), or ChainError
    when the supply itself cannot be read, or the indexer is too far behind for N to be
    current. Unreadable treasury balances (or a listed value that is no address) leave only
    the circulating supply unknown, not the equation."""
    block = safe_block(client)
    cursor = transfers_cursor()
    if cursor is not None and cursor.chain_id == settings.CHAIN_ID:
        behind = block - cursor.block_number
        if behind > INDEXER_MAX_LAG_BLOCKS:
            raise ChainError(
                f"the indexer is {behind} blocks behind the safe head (at block "
                f"{cursor.block_number} of {block}); a supply read at its block would be old"
            )
        block = min(block, cursor.block_number)
    supply = client.total_supply(block=block)
    try:
        treasury = sum(_balance_at(client, address, block) for address in treasury_addresses())
    except ChainError as exc:
        return block, supply, None, f"Treasury balances unavailable: {exc}"
    return block, supply, treasury, ""


# --- Books side ------------------------------------------------------------------------------


def _total(queryset, field: str) -> int:
    value = queryset.aggregate(total=Sum(field))["total"]
    return int(value or 0)


def _current_claims():
    """Claims nothing supersedes, as NOT EXISTS: written as superseded_by__isnull, PostgreSQL
    plans a nested loop over every claim (13 s at a million claims)."""
    return MintLogClaim.objects.exclude(
        Exists(MintLogClaim.objects.filter(supersedes=OuterRef("pk")))
    )


def _sum_of(queryset, expression):
    """``queryset``'s total of ``expression`` as a one-row subquery (grouped by chain, which
    every part filters on)."""
    return queryset.order_by().values("chain_id").annotate(total=Sum(expression)).values("total")


def _sums_at_once(parts: dict) -> dict[str, int]:
    """Several totals read by ONE statement (``SELECT (…), (…), …``), so they come from the
    same database snapshot: a claim committed, or a row marked, between two statements
    could otherwise be counted twice or not at all."""
    selects, params = [], []
    for queryset in parts.values():
        sql, part_params = queryset.query.get_compiler(using=queryset.db).as_sql()
        selects.append(f"({sql})")
        params.extend(part_params)
    with connection.cursor() as cursor:
        # Only SQL Django compiled from the querysets above; the values are parameters.
        cursor.execute("SELECT " + ", ".join(selects), params)  # noqa: S608
        row = cursor.fetchone()
    return {name: int(value or 0) for name, value in zip(parts, row, strict=True)}


def _books_at_block(block: int, *, chain_id: int) -> dict[str, int]:
    """DB minted, minted deposits and in flight at ``block``, in one statement, from the
    claim markers of the indexed mint logs (``ChainTransfer.claim``): the current deposit
    claims whose log the indexer holds at or below ``block`` are

    * the rows marked ``deposit`` (their ``claimed_tzs`` is the deposit's amount) — one
      index-only sum over the partial index ``chain_transfer_minted`` — less those whose
      claim a later claim supersedes (the matching re-marks them; until it has, they are
      taken out here, found from the superseding claims: a reorg's, rare);
    * plus the rows not marked yet that a current deposit claim names (claims made since the
      last matching pass: few rows, through ``chain_transfer_unjudged``).

    The same total as summing every current deposit claim joined to the indexed logs, without
    touching a million claims."""
    mints = ChainTransfer.objects.filter(
        chain_id=chain_id, kind=ChainTransfer.Kind.MINT, block_number__lte=block
    )
    marked = mints.filter(claim=ChainTransfer.Claim.DEPOSIT)
    # Marked rows whose claim a later one supersedes (not re-marked yet), found from the few
    # superseding claims: an anti-join of every marked row would hash every claim.
    marked_superseded = Subquery(
        mints.filter(
            claim=ChainTransfer.Claim.DEPOSIT,
            tx_hash=OuterRef("supersedes__tx_hash"),
            log_index=OuterRef("supersedes__log_index"),
        ).values("claimed_tzs")[:1],
        output_field=BigIntegerField(),
    )
    unmarked_amount = Subquery(
        _current_claims()
        .filter(
            chain_id=OuterRef("chain_id"),
            tx_hash=OuterRef("tx_hash"),
            log_index=OuterRef("log_index"),
            deposit__isnull=False,
        )
        .values("deposit__amount_tzs")[:1],
        output_field=BigIntegerField(),
    )
    return _sums_at_once(
        {
            "db_minted_marked": _sum_of(marked, "claimed_tzs"),
            "db_minted_superseded": _sum_of(
                MintLogClaim.objects.filter(
                    chain_id=chain_id, supersedes__isnull=False, supersedes__chain_id=chain_id
                ),
                marked_superseded,
            ),
            "db_minted_unmarked": _sum_of(mints.filter(claim__isnull=True), unmarked_amount),
            "in_flight_units": _sum_of(
                mints_in_flight(chain_id).filter(block_number__lte=block), "amount_units"
            ),
            "deposits_minted_tzs": DepositRequest.objects.filter(
                status=DepositRequest.Status.MINTED
            )
            .order_by()
            .values("status")
            .annotate(total=Sum("amount_tzs"))
            .values("total"),
        }
    )


def books_at(block: int | None, *, chain_id: int) -> dict[str, int]:
    """The books' figures at ``block`` (None: the chain's block is unknown; every claim and
    entry counts, and nothing is known to be in flight). SQL aggregates only."""
    cursor = transfers_cursor()
    entries = ReconciliationEntry.objects.filter(chain_id=chain_id)
    if block is not None:
        entries = entries.filter(Q(block_number__isnull=True) | Q(block_number__lte=block))
    reconciled = _total(entries, "amount_units")
    if block is not None and cursor is not None:
        sums = _books_at_block(block, chain_id=chain_id)
        return {
            "db_minted_tzs": (
                sums["db_minted_marked"] - sums["db_minted_superseded"] + sums["db_minted_unmarked"]
            ),
            "deposits_minted_tzs": sums["deposits_minted_tzs"],
            "reconciled_units": reconciled,
            "in_flight_units": sums["in_flight_units"],
        }
    # Not indexed yet, or the chain's block unknown: every current deposit claim counts (a
    # claim is made only once its log has MINT_CONFIRMATIONS). Rare, and over every claim.
    claims = _current_claims().filter(chain_id=chain_id, deposit__isnull=False)
    in_flight_units = 0
    if block is not None:
        in_flight_units = _total(
            mints_in_flight(chain_id).filter(block_number__lte=block).order_by(), "amount_units"
        )
    return {
        "db_minted_tzs": _total(claims, "deposit__amount_tzs"),
        "deposits_minted_tzs": _total(
            DepositRequest.objects.filter(status=DepositRequest.Status.MINTED), "amount_tzs"
        ),
        "reconciled_units": reconciled,
        "in_flight_units": in_flight_units,
    }


# --- The snapshot ----------------------------------------------------------------------------


def supply_snapshot_take(
    *, client_factory: Callable[[], NtzsClient] = mint_client
) -> SupplySnapshot:
    """Read the chain, compute the books at the same block, store one ``SupplySnapshot`` and
    move the discrepancy alert. Never raises for the chain: an unreadable figure is stored
    as unavailable (NULL with the reason)."""
    chain_id = settings.CHAIN_ID
    block = supply = treasury = None
    reason = ""
    try:
        block, supply, treasury, reason = _chain_read(client_factory())
    except ChainError as exc:
        reason = str(exc) or type(exc).__name__
        block = None  # the books are then shown over every row, not at a block
    books = books_at(block, chain_id=chain_id)
    try:
        in_flight_tzs = units_to_tzs(books["in_flight_units"])
    except MoneyError:
        # our own mints are whole shillings: a fraction is not ours to call in flight, and
        # stays in the discrepancy, where it is seen
        logger.warning("In-flight mints are not whole shillings: %s", books["in_flight_units"])
        in_flight_tzs = 0
    discrepancy = None
    if supply is not None:
        discrepancy = supply - (
            tzs_to_units(books["db_minted_tzs"])
            + books["reconciled_units"]
            + tzs_to_units(in_flight_tzs)
        )
    snapshot = SupplySnapshot.objects.create(
        chain_id=chain_id,
        block_number=block,
        onchain_supply_units=supply,
        db_minted_tzs=books["db_minted_tzs"],
        deposits_minted_tzs=books["deposits_minted_tzs"],
        reconciled_units=books["reconciled_units"],
        in_flight_tzs=in_flight_tzs,
        discrepancy_units=discrepancy,
        unavailable_reason=reason,
        treasury_units=treasury,
    )
    if reason:
        logger.warning("Supply snapshot unavailable: %s", reason)
    _alert_move(snapshot)
    return snapshot


def _alert_move(snapshot: SupplySnapshot) -> None:
    if snapshot.discrepancy_units is None:
        return  # unavailable: neither proves nor clears a discrepancy
    if snapshot.discrepancy_units == 0:
        if alert_resolve(kind=SUPPLY_ALERT):
            logger.warning("Supply discrepancy cleared at block %s", snapshot.block_number)
        return
    previous = (
        SupplySnapshot.objects.filter(
            chain_id=snapshot.chain_id, pk__lt=snapshot.pk, discrepancy_units__isnull=False
        )
        .order_by("-pk")
        .values_list("discrepancy_units", flat=True)
        .first()
    )
    if previous is None or previous == 0:
        return  # one discrepant snapshot may be a block read between a mint and its claim
    detail = equation_text(snapshot)
    open_alert = Alert.objects.filter(kind=SUPPLY_ALERT, resolved_at__isnull=True).first()
    changed = open_alert is None or _detail_amount(open_alert.detail) != snapshot.discrepancy_units
    alert_raise(kind=SUPPLY_ALERT, detail=detail)
    if changed:
        logger.error(
            "Supply discrepancy discrepancy_units=%s block=%s onchain_units=%s "
            "db_minted_tzs=%s reconciled_units=%s in_flight_tzs=%s",
            snapshot.discrepancy_units,
            snapshot.block_number,
            snapshot.onchain_supply_units,
            snapshot.db_minted_tzs,
            snapshot.reconciled_units,
            snapshot.in_flight_tzs,
        )


def _detail_amount(detail: str) -> Decimal | None:
    """The discrepancy an open alert's detail states (its first line: ``discrepancy N``)."""
    first = (detail or "").split("\n", 1)[0]
    if first.startswith("discrepancy "):
        try:
            return Decimal(first.split()[1])
        except (IndexError, ArithmeticError):
            return None
    return None


def equation_text(snapshot: SupplySnapshot) -> str:
    """The equation with its figures, for a person (``reconcile``, the alert's detail)."""

    def units(value) -> str:
        return "unavailable" if value is None else f"{int(value)}"

    discrepancy = units(snapshot.discrepancy_units)
    lines = [
        f"discrepancy {discrepancy} base units",
        f"block {snapshot.block_number if snapshot.block_number is not None else 'unknown'}",
        f"On-chain supply        {units(snapshot.onchain_supply_units)} base units",
        f"DB minted              {tzs_to_units(snapshot.db_minted_tzs)} base units "
        f"({snapshot.db_minted_tzs:,} TZS of claimed mint logs)",
        f"Reconciled             {int(snapshot.reconciled_units)} base units (entries)",
        f"In flight              {tzs_to_units(snapshot.in_flight_tzs)} base units "
        f"({snapshot.in_flight_tzs:,} TZS landed, not claimed yet)",
        "On-chain supply == DB minted + reconciled + in flight "
        + ("holds" if discrepancy == "0" else f"is off by {discrepancy} base units"),
    ]
    if snapshot.deposits_minted_tzs is not None:
        lines.append(
            f"Cross-check: minted deposits {snapshot.deposits_minted_tzs:,} TZS "
            f"(DB minted {snapshot.db_minted_tzs:,} TZS)"
        )
    if snapshot.unavailable_reason:
        lines.append(f"Unavailable: {snapshot.unavailable_reason}")
    return "\n".join(lines)
