"""The chain indexer (DESIGN §8): the token's ``Transfer`` logs and its ``RoleGranted`` /
``RoleRevoked`` logs, read in bounded ranges through the chain client (failover, retries and
the shared breaker of ``minting``) and stored as ``ChainTransfer`` and ``TokenRoleEvent``
rows, up to the safe head (``confirmation_head`` less ``MINT_CONFIRMATIONS``).

One ``IndexerCursor`` per stream holds the last indexed block and its hash. Every run:

- the cursor's block hash is compared with the chain's: unchanged means nothing at or below
  it changed (a block hash commits to its whole history); changed means a reorg, and the
  stored rows are walked down until one's block hash is canonical again — everything above
  it is read again;
- the last ``REORG_WINDOW`` blocks are read again in any case (a provider behind a load
  balancer can answer getLogs from a replica that is a few blocks behind: an empty answer
  for a block it did not have yet must not stay forever);
- rows in the re-read range that the chain no longer has (another block hash, or gone) are
  deleted and the canonical ones inserted, in one transaction with the cursor's move.

Two runs at once: the cursor moves by compare-and-set (``UPDATE … WHERE block_number = read
AND block_hash = read``) in the transaction that writes the rows, so a second run that read
the same cursor writes nothing (its UPDATE waits for the first's commit, then matches no row)
and stops with ``raced``; the unique constraints with ``ON CONFLICT DO NOTHING`` make a
duplicate row impossible whatever happens. No advisory lock: it would have to be held across
the RPC reads (a session lock, lost behind a transaction-pooling proxy, PostgreSQL only),
and the compare-and-set already serialises the writes.

A long history is read and written in steps of ``BLOCKS_PER_WRITE`` blocks, each all or
nothing with its cursor move; a thread reads the next step while the current one is written
(``_steps_read``), so the time approaches the slower of reading and writing, not their sum.

The writes are rows of chain facts, never a deposit: matching (``matching``) decides what a
mint log means. A mint log whose claim already exists gets its claim marker
(``ChainTransfer.claim``) in the statement that stores it."""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from eth_utils import to_checksum_address

from core.clock import now
from deposits.models import DepositRequest
from minting.breaker import rpc_breaker
from minting.chain import (
    ROLE_GRANTED_TOPIC,
    ROLE_REVOKED_TOPIC,
    TRANSFER_TOPIC,
    ZERO_ADDRESS,
    ChainError,
    ChainUnavailable,
    NtzsClient,
    hex_str,
)
from minting.models import MintLogClaim, TokenDeployment
from minting.rpc import mint_client
from minting.services.recording import deploy_block
from reconciliation.models import ChainTransfer, IndexerCursor, TokenRoleEvent

logger = logging.getLogger("reconciliation")

TRANSFERS, ROLES = "transfers", "roles"
# Blocks read again on every run below the cursor (see the module docstring).
REORG_WINDOW = 64
# Blocks read, then written in one transaction with the cursor: a long history is indexed in
# steps that each survive a failure of the next (getLogs calls stay MINT_LOGS_MAX_RANGE wide),
# and the next step is read while this one is written (``_steps_read``): small enough steps
# that reading and writing overlap over most of a long range.
BLOCKS_PER_WRITE = 1_000
# How many distinct blocks of stored rows are compared with the chain to find where a reorg
# deeper than the cursor began; none of them canonical → the stream is indexed again from
# its first block.
FORK_SEARCH_BLOCKS = 500


class IndexerRaced(Exception):
    """Another run moved the cursor first: this run's rows are not written."""


@dataclass(frozen=True)
class Stream:
    name: str
    model: type
    topics: list
    rows: Callable[[list, int], list]


@functools.lru_cache(maxsize=65_536)
def _checksummed(hex40: str) -> str:
    return to_checksum_address("0x" + hex40)


def _address(topic) -> str:
    """The address in a topic (hex from the node, or bytes), checksummed. Cached: a token's
    logs name the same few thousand addresses over and over, and a checksum is a keccak."""
    text = topic if isinstance(topic, str) else bytes(topic).hex()
    return _checksummed(text[-40:].lower())


def _int(value) -> int:
    """A JSON-RPC quantity (hex string) or an int."""
    return int(value, 16) if isinstance(value, str) else int(value)


def _word(data) -> int:
    """The first 32-byte word of a log's data (hex string or bytes) as an unsigned int."""
    if isinstance(data, str):
        return int(data.removeprefix("0x")[:64] or "0", 16)
    return int.from_bytes(bytes(data)[:32], "big")


def _common(log, chain_id: int) -> dict:
    return {
        "chain_id": chain_id,
        "tx_hash": hex_str(log["transactionHash"]),
        "log_index": _int(log["logIndex"]),
        "block_number": _int(log["blockNumber"]),
        "block_hash": hex_str(log["blockHash"]),
    }


def transfer_rows(logs: list, chain_id: int) -> list[dict]:
    """``Transfer(from, to, value)`` logs as ``ChainTransfer`` rows (field values; no model
    instance per log: a Django model's constructor is the costliest step over 100,000 logs):
    from zero a mint, to zero a burn (a wipe burns too), else a transfer. Logs as the node
    sends them (``logs_read(raw=True)``) or as web3 formats them. ``indexed_at`` is set by
    the write, one value for all (``_insert_ignoring_conflicts``). Written out flat (one
    dict per log, no helper per field): it runs for every log, beside the write."""
    mint, burn, transfer = (
        ChainTransfer.Kind.MINT.value,
        ChainTransfer.Kind.BURN.value,
        ChainTransfer.Kind.TRANSFER.value,
    )
    rows = []
    append = rows.append
    for log in logs:
        topics = log["topics"]
        if log.get("removed") or len(topics) != 3:
            continue
        source, target = _address(topics[1]), _address(topics[2])
        number, index = log["blockNumber"], log["logIndex"]
        append(
            {
                "chain_id": chain_id,
                "tx_hash": hex_str(log["transactionHash"]),
                "log_index": int(index, 16) if isinstance(index, str) else int(index),
                "block_number": int(number, 16) if isinstance(number, str) else int(number),
                "block_hash": hex_str(log["blockHash"]),
                "from_address": source,
                "to_address": target,
                "amount_units": _word(log["data"]),
                "kind": mint
                if source == ZERO_ADDRESS
                else burn
                if target == ZERO_ADDRESS
                else transfer,
                "safe_executed": None,
            }
        )
    return rows


def role_rows(logs: list, chain_id: int) -> list[dict]:
    """``RoleGranted`` / ``RoleRevoked`` logs as ``TokenRoleEvent`` rows (field values)."""
    granted = hex_str(ROLE_GRANTED_TOPIC)
    rows = []
    for log in logs:
        if log.get("removed") or len(log["topics"]) != 4:
            continue
        kind = (
            TokenRoleEvent.Kind.GRANTED
            if hex_str(log["topics"][0]) == granted
            else TokenRoleEvent.Kind.REVOKED
        )
        rows.append(
            _common(log, chain_id)
            | {
                "kind": kind.value,
                "role": hex_str(log["topics"][1]),
                "account": _address(log["topics"][2]),
                "sender": _address(log["topics"][3]),
            }
        )
    return rows


STREAMS = (
    Stream(TRANSFERS, ChainTransfer, [hex_str(TRANSFER_TOPIC)], transfer_rows),
    Stream(
        ROLES,
        TokenRoleEvent,
        [[hex_str(ROLE_GRANTED_TOPIC), hex_str(ROLE_REVOKED_TOPIC)]],
        role_rows,
    ),
)


def safe_block(client: NtzsClient) -> int:
    """The highest block with MINT_CONFIRMATIONS confirmations (counted as the mint worker
    counts them, from ``confirmation_head``): what the indexer stores, and below which a
    log is judged."""
    head = client.confirmation_head()
    return max(min(head, head - int(settings.MINT_CONFIRMATIONS or 0) + 1), 0)


def indexer_first_block() -> int:
    """NTZS_DEPLOY_BLOCK, else the recorded deployment's block (else 0)."""
    return deploy_block()


# --- Where a run starts -------------------------------------------------------------------------


def _fork_start(client: NtzsClient, stream: Stream, cursor: IndexerCursor, floor: int) -> int:
    """The first block to read again after a reorg that changed the cursor's block: one above
    the highest stored row whose block is still canonical (nothing below it changed)."""
    chain_id = settings.CHAIN_ID
    blocks = list(
        stream.model.objects.filter(chain_id=chain_id, block_number__lt=cursor.block_number)
        .values_list("block_number", "block_hash")
        .distinct()
        .order_by("-block_number")[:FORK_SEARCH_BLOCKS]
    )
    canonical = client.block_hashes([number for number, _ in blocks])
    for number, stored in blocks:
        if canonical.get(number) == stored:
            return max(number + 1, floor)
    return floor


def _run_start(
    client: NtzsClient, stream: Stream, cursor: IndexerCursor | None, floor: int
) -> int | None:
    """Where this run reads from; None when the node does not have the cursor's block yet
    (a lagging node: nothing is decided on it)."""
    if cursor is None:
        return floor
    canonical = client.block_hash(cursor.block_number)
    if canonical is None:
        return None
    if canonical == cursor.block_hash:
        return max(floor, cursor.block_number - REORG_WINDOW + 1)
    start = _fork_start(client, stream, cursor, floor)
    logger.warning(
        "Chain reorganised under the %s indexer: block %s is now %s, not %s; "
        "reading again from block %s",
        stream.name,
        cursor.block_number,
        canonical,
        cursor.block_hash,
        start,
    )
    return start


# --- One step: read a range, write it with the cursor ------------------------------------------


def _consistent(logs: list, end: int, end_hash: str) -> bool:
    """Every log of a block names the same block hash, and the last block's is the one read
    after the logs: otherwise the chain moved during the read."""
    seen: dict[int, str] = {end: end_hash}
    for log in logs:
        number, block_hash = _int(log["blockNumber"]), hex_str(log["blockHash"])
        if seen.setdefault(number, block_hash) != block_hash:
            return False
    return True


@transaction.atomic
def _write(
    stream: Stream,
    *,
    expected: tuple[int, str] | None,
    start: int,
    end: int,
    end_hash: str,
    rows: list,
    first_block: int | None,
    as_of,
) -> tuple[int, int]:
    """Move the cursor from ``expected`` to (end, end_hash) — compare-and-set — then make
    the stored rows at or above ``start`` equal ``rows``. Returns (added, removed)."""
    chain_id = settings.CHAIN_ID
    cursor_rows = IndexerCursor.objects.filter(name=stream.name)
    changes = {"block_number": end, "block_hash": end_hash, "updated_at": as_of}
    if first_block is not None:
        changes |= {"first_block": first_block, "supply_before_units": None}
    if expected is None:
        try:
            with transaction.atomic():
                IndexerCursor.objects.create(name=stream.name, chain_id=chain_id, **changes)
        except IntegrityError:
            raise IndexerRaced from None
    elif not cursor_rows.filter(block_number=expected[0], block_hash=expected[1]).update(
        chain_id=chain_id, **changes
    ):
        raise IndexerRaced
    wanted = {(row["tx_hash"], row["log_index"]): row for row in rows}
    stale, kept = [], set()
    for pk, tx_hash, log_index, block_hash in stream.model.objects.filter(
        chain_id=chain_id, block_number__gte=start
    ).values_list("pk", "tx_hash", "log_index", "block_hash"):
        row = wanted.get((tx_hash, log_index))
        if row is None or row["block_hash"] != block_hash or row["block_number"] > end:
            stale.append(pk)
        else:
            kept.add((tx_hash, log_index))
    for offset in range(0, len(stale), 1000):
        stream.model.objects.filter(pk__in=stale[offset : offset + 1000]).delete()
    new = [row for key, row in wanted.items() if key not in kept]
    _insert_ignoring_conflicts(stream.model, new, shared={"indexed_at": now()})
    return len(new), len(stale)


def _insert_ignoring_conflicts(model, rows: list[dict], *, shared: dict | None = None) -> None:
    """INSERT … ON CONFLICT DO NOTHING: a row another writer inserted is not an error.
    ``shared``: field values the same for every row (sent once, not once per row: a
    datetime in 100,000 JSON objects costs more than the rest of them).

    On PostgreSQL one statement per 10,000 rows, sent as one JSON parameter and expanded by
    ``json_to_recordset``: bulk_create's multi-row VALUES costs more in Django's SQL
    compiler and the driver's handling of 100,000 placeholders than the database spends
    storing the rows. A mint log's claim marker (``ChainTransfer.claim``) is set by the same
    statement from the claim that names it, if any (a worker mint is usually claimed before
    its log is indexed): the matching then has nothing to mark. Elsewhere (SQLite) the
    matching marks the rows."""
    if not rows:
        return
    shared = shared or {}
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**row, **shared) for row in rows], batch_size=1000, ignore_conflicts=True
        )
        return
    fields = [f for f in model._meta.concrete_fields if f.attname in rows[0]]
    constants = [model._meta.get_field(name) for name in shared]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields + constants)
    names = ", ".join(
        [f"r.{quote(f.attname)}" for f in fields]
        + [f"%s::{f.db_type(connection)}" for f in constants]
    )
    record = ", ".join(f"{quote(f.attname)} {f.db_type(connection)}" for f in fields)
    marks, joins = "", ""
    if model is ChainTransfer:
        claims = quote(MintLogClaim._meta.db_table)
        deposits = quote(DepositRequest._meta.db_table)
        columns += ", claim, claimed_tzs"
        # the claim naming the log; a claim superseding it; its deposit (see mint_log_claims_mark)
        marks = (
            ", CASE WHEN c.id IS NULL THEN NULL WHEN s.id IS NOT NULL THEN 'superseded'"
            " WHEN c.deposit_id IS NOT NULL THEN 'deposit' ELSE 'entry' END"
            ", CASE WHEN s.id IS NULL THEN d.amount_tzs END"
        )
        joins = (
            f" LEFT JOIN {claims} c ON r.kind = 'mint' AND c.chain_id = r.chain_id"
            " AND c.tx_hash = r.tx_hash AND c.log_index = r.log_index"
            f" LEFT JOIN {claims} s ON s.supersedes_id = c.id"
            f" LEFT JOIN {deposits} d ON d.id = c.deposit_id"
        )
    # Tables, columns and types come from the models; the values are parameters.
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {names}{marks} FROM json_to_recordset(%s::json) AS r({record}){joins} "
        "ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        for offset in range(0, len(rows), 10_000):
            # amounts are uint256: JSON numbers written exactly (no float on either side);
            # datetimes as ISO text
            batch = json.dumps(rows[offset : offset + 10_000], default=str)
            cursor.execute(sql, [*shared.values(), batch])


@dataclass
class StreamResult:
    added: int = 0
    removed: int = 0
    cursor: int | None = None
    outcome: str = "indexed"


def stream_index(
    client: NtzsClient,
    stream: Stream,
    *,
    up_to: int,
    from_block: int | None = None,
    as_of=None,
) -> StreamResult:
    """Index one stream up to block ``up_to``. A chain read that fails raises
    ChainUnavailable; the steps written before it stay (each with its cursor)."""
    as_of = as_of or now()
    floor = indexer_first_block()
    cursor = IndexerCursor.objects.filter(name=stream.name).first()
    first_block = None
    if from_block is not None:
        start = max(from_block, 0)
        if cursor is None or cursor.first_block is None or start < cursor.first_block:
            first_block = start
    else:
        start = _run_start(client, stream, cursor, floor)
        if start is None:
            logger.warning(
                "The node does not have block %s yet (indexed by %s); waiting",
                cursor.block_number,
                stream.name,
            )
            return StreamResult(cursor=cursor.block_number, outcome="node_behind")
        if cursor is None or cursor.first_block is None:
            first_block = floor
    result = StreamResult(cursor=cursor.block_number if cursor else None)
    expected = (cursor.block_number, cursor.block_hash) if cursor else None
    steps = _steps_read(client, stream, start=start, up_to=up_to)
    try:
        for step_start, end, end_hash, rows in steps:
            try:
                added, removed = _write(
                    stream,
                    expected=expected,
                    start=step_start,
                    end=end,
                    end_hash=end_hash,
                    rows=rows,
                    first_block=first_block,
                    as_of=as_of,
                )
            except IndexerRaced:
                logger.info("%s indexer: another run moved the cursor first; stopping", stream.name)
                result.outcome = "raced"
                return result
            first_block = None
            result.added += added
            result.removed += removed
            result.cursor = end
            expected = (end, end_hash)
    finally:
        steps.close()
    return result


def _step_read(client: NtzsClient, stream: Stream, start: int, end: int) -> tuple:
    """One step's logs, the hash of its last block (read after them) and its rows."""
    logs = client.logs_read(topics=stream.topics, from_block=start, to_block=end, raw=True)
    end_hash = client.block_hash(end)
    if end_hash is None or not _consistent(logs, end, end_hash):
        raise ChainUnavailable(
            f"The chain moved while blocks {start}-{end} were read; the next run reads them again."
        )
    return start, end, end_hash, stream.rows(logs, settings.CHAIN_ID)


def _steps_read(client: NtzsClient, stream: Stream, *, start: int, up_to: int):
    """The steps from ``start`` to ``up_to`` in order, each read whole or not at all. After
    the first, the next step is read by a thread while the caller writes the current one
    (reading and writing take about as long each: one waits on the node, the other on the
    database), so a long history is indexed in about the time of the slower of the two. A
    failed read is raised where its step comes, after the steps before it were written.
    The thread only reads the chain, one step ahead at most; closing the generator stops it."""
    ranges = [
        (s, min(s + BLOCKS_PER_WRITE - 1, up_to)) for s in range(start, up_to + 1, BLOCKS_PER_WRITE)
    ]
    if not ranges:
        return
    first = _step_read(client, stream, *ranges[0])
    if len(ranges) == 1:
        yield first
        return
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read_ahead() -> None:
        try:
            for step_start, end in ranges[1:]:
                if stop.is_set():
                    return
                try:
                    item = (None, _step_read(client, stream, step_start, end))
                except Exception as exc:  # handed to the caller, raised at its step
                    item = (exc, None)
                while not stop.is_set():
                    try:
                        ahead.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if item[0] is not None:
                    return
        finally:
            connections.close_all()  # this thread's own, if the client opened one

    reader = threading.Thread(target=read_ahead, name=f"index-{stream.name}", daemon=True)
    reader.start()  # before the first step is handed over: its write overlaps the next read
    try:
        yield first
        for step_start, end in ranges[1:]:
            while True:
                try:
                    error, step = ahead.get(timeout=1)
                    break
                except queue.Empty:
                    if not reader.is_alive() and ahead.empty():
                        raise ChainUnavailable(
                            f"Blocks {step_start}-{end} could not be read; the next run reads "
                            "them again."
                        ) from None
            if error is not None:
                raise error
            yield step
    finally:
        stop.set()
        reader.join()


# --- The token's supply before indexing began ---------------------------------------------------


def supply_before_first_block(client: NtzsClient, first_block: int) -> int:
    """The supply no indexed log explains: the token's ``totalSupply`` just before the first
    indexed block — or, when the token was created in that block, its supply at the end of
    it (a constructor mint). NTZS deployed here (``deploy_ntzs``) mints nothing in its
    constructor, so indexing from its recorded block needs no archive read."""
    deployed_here = TokenDeployment.objects.filter(
        chain_id=settings.CHAIN_ID,
        contract_address__iexact=client.address,
        deploy_block__gte=first_block,
    ).exists()
    if deployed_here:
        return 0
    if first_block > 0 and client.code_present(block=first_block - 1):
        return client.total_supply(block=first_block - 1)
    if client.code_present(block=first_block):
        return client.total_supply(block=first_block)
    return 0


def _supply_before_record(client: NtzsClient) -> None:
    cursor = IndexerCursor.objects.filter(name=TRANSFERS, supply_before_units__isnull=True).first()
    if cursor is None or cursor.first_block is None:
        return
    try:
        units = supply_before_first_block(client, cursor.first_block)
    except ChainUnavailable as exc:
        logger.warning(
            "The token's supply before block %s could not be read: %s", cursor.first_block, exc
        )
        return
    IndexerCursor.objects.filter(
        name=TRANSFERS, first_block=cursor.first_block, supply_before_units__isnull=True
    ).update(supply_before_units=units)


# --- One run ------------------------------------------------------------------------------------


def chain_index(*, client: NtzsClient, from_block: int | None = None) -> dict:
    """Both streams up to the safe head, then the supply before the first block when not
    known yet. Returns counts; ChainUnavailable when the chain cannot be read."""
    as_of = now()  # before the head is read: rows claimed before this are covered (selectors)
    up_to = safe_block(client)
    counts: dict = {"safe_block": up_to}
    for stream in STREAMS:
        result = stream_index(client, stream, up_to=up_to, from_block=from_block, as_of=as_of)
        counts[stream.name] = {
            "outcome": result.outcome,
            "added": result.added,
            "removed": result.removed,
            "cursor": result.cursor,
        }
    _supply_before_record(client)
    return counts


def guarded(run: Callable[[NtzsClient], dict], *, label: str, client_factory=mint_client) -> dict:
    """``run(client)`` behind the shared breaker, like the mint runner: an unavailable chain
    counts as a failure and the run is delayed (never an exception out of the task); a wrong
    chain or a missing token waits with its sentence."""
    breaker = rpc_breaker()
    if not breaker.allow():
        return {"delayed": 1, "reason": "the circuit breaker is open"}
    try:
        result = run(client_factory())
    except ChainUnavailable as exc:
        logger.warning("%s delayed: %s", label, exc)
        breaker.record_failure()
        return {"delayed": 1, "reason": str(exc)}
    except ChainError as exc:
        logger.error("%s waiting: %s", label, exc)
        return {"waiting": str(exc)}
    breaker.record_success()
    return result
