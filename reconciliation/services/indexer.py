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
and stops with ``raced``; the unique constraints make a duplicate row impossible whatever
happens (rows are COPYed in a savepoint; a row stored already sends them through INSERT … ON
CONFLICT DO NOTHING instead, which skips it: ``_insert_ignoring_conflicts``). No advisory
lock: it would have to be held across the RPC reads (a session lock, lost behind a
transaction-pooling proxy, PostgreSQL only), and the compare-and-set already serialises the
writes.

A long history is read and written in steps of ``BLOCKS_PER_WRITE`` blocks, each all or
nothing with its cursor move, through a pipeline (``_steps_read``): one thread reads a step
from the node, another looks up its claim markers while the caller writes the step before,
so the time approaches the slowest of the three, not their sum.

The writes are rows of chain facts, never a deposit: matching (``matching``) decides what a
mint log means. A mint log whose claim already exists when its step is read gets its claim
marker (``ChainTransfer.claim``) as it is stored (``claim_marks``); one claimed later is
marked by the matching."""

from __future__ import annotations

import datetime
import functools
import gc
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter

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
# and the next steps are read and looked up while this one is written (``_steps_read``):
# small enough steps that the three overlap over most of a long range.
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
    # run on the rows beside the read, before they are handed to the write (claim_marks)
    marks: Callable[[list], list] | None = None


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
    # topic -> checksummed address for this call: a step's logs name few addresses many
    # times, and a dict lookup is a fraction of _address's (bounded) cache
    addresses: dict = {}
    address_of = addresses.get
    for log in logs:
        topics = log["topics"]
        if log.get("removed") or len(topics) != 3:
            continue
        source, target = address_of(topics[1]), address_of(topics[2])
        if source is None:
            source = addresses[topics[1]] = _address(topics[1])
        if target is None:
            target = addresses[topics[2]] = _address(topics[2])
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


def claim_marks(rows: list[dict]) -> list[dict]:
    """Set each ``ChainTransfer`` row's claim marker from the claims as they are now: the
    claim naming the log (a worker mint is usually claimed before its log is indexed), a
    claim superseding it, its deposit's amount (see ``mint_log_claims_mark``). Every row
    gets both keys (None: no claim seen). Run by the reader beside the previous step's
    write (``_steps_read``), off the write's path. A claim made after this lookup is marked
    by the matching, which looks at every unmarked row each pass; one superseded after it,
    likewise. PostgreSQL only: elsewhere the rows stay unmarked and the matching marks them.

    One query for the whole step, and as few index probes as it can be: the claims of the
    step's transactions are one ``tx_hash = ANY(…)`` scan of their unique index (each
    distinct transaction once, however many mint logs it holds; the claims of its other
    logs are dropped here), the supersessions one hashed set of the few claims that
    supersede another (a reorg that moved a recorded mint: rare) instead of one probe per
    claim, and only the deposits are probed per claim (their amount), in their index's
    order. The per-log lateral probes it replaces cost twice the database time
    (docs/benchmarks.md)."""
    for row in rows:
        row["claim"] = row["claimed_tzs"] = None
    mints = [row for row in rows if row["kind"] == ChainTransfer.Kind.MINT]
    if not mints or connection.vendor != "postgresql":
        return rows
    quote = connection.ops.quote_name
    claims = quote(MintLogClaim._meta.db_table)
    deposits = quote(DepositRequest._meta.db_table)
    # Tables come from the models; the chain and the hashes are parameters.
    # The claims are taken in deposit order (a sorted subquery is not flattened), so the
    # deposits' index is walked forward rather than probed at random: a third less time.
    sql = (
        "SELECT c.tx_hash, c.log_index, c.deposit_id IS NOT NULL,"  # noqa: S608
        f" c.id IN (SELECT s.supersedes_id FROM {claims} s WHERE s.supersedes_id IS NOT NULL),"
        " d.amount_tzs"
        f" FROM (SELECT id, tx_hash, log_index, deposit_id FROM {claims}"
        "  WHERE chain_id = %s AND tx_hash = ANY(%s::text[]) ORDER BY deposit_id) c"
        f" LEFT JOIN {deposits} d ON d.id = c.deposit_id"
    )
    by_key = {(row["tx_hash"], row["log_index"]): row for row in mints}
    hashes = sorted({row["tx_hash"] for row in mints})
    deposit, entry, superseded = (
        ChainTransfer.Claim.DEPOSIT.value,
        ChainTransfer.Claim.ENTRY.value,
        ChainTransfer.Claim.SUPERSEDED.value,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # a plan over thousands of keys crosses jit_above_cost, and a parallel plan would
        # take a core from the write and the node: both cost more than the probes they speed
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(sql, [mints[0]["chain_id"], hashes])
        for tx_hash, log_index, has_deposit, is_superseded, amount_tzs in cursor.fetchall():
            row = by_key.get((tx_hash, log_index))
            if row is None:
                continue  # another log of the transaction: not a mint of this step
            if is_superseded:
                row["claim"] = superseded
            elif has_deposit:
                row["claim"], row["claimed_tzs"] = deposit, amount_tzs
            else:
                row["claim"] = entry
    return rows


STREAMS = (
    Stream(TRANSFERS, ChainTransfer, [hex_str(TRANSFER_TOPIC)], transfer_rows, claim_marks),
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
    # compared as the node spelled them first (one dict operation per log), then each block
    # once in the stored spelling (a block holds many logs)
    as_sent: dict = {}
    for log in logs:
        number, block_hash = log["blockNumber"], log["blockHash"]
        if as_sent.setdefault(number, block_hash) != block_hash and hex_str(
            as_sent[number]
        ) != hex_str(block_hash):
            return False
    seen: dict[int, str] = {end: end_hash}
    for number, block_hash in as_sent.items():
        spelled = hex_str(block_hash)
        if seen.setdefault(_int(number), spelled) != spelled:
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
    """Insert ``rows``; a row another writer inserted is not an error (the unique
    constraints decide, as ON CONFLICT DO NOTHING). ``shared``: field values the same for
    every row (sent once, not once per row).

    On PostgreSQL the rows are sent with COPY (the cheapest way in: no SQL to compile, no
    placeholders, the driver streams text the server parses as it arrives) straight into the
    table, inside a savepoint. Only the cursor's holder writes a stream's rows (the
    compare-and-set in ``_write``) and its rows at or above the step's start were compared
    first, so a conflict "cannot" happen; if one does all the same (a row stored by other
    means), the savepoint is rolled back and the rows go through a temporary table and
    INSERT … SELECT … ON CONFLICT DO NOTHING, which skips it. A mint log's claim marker
    (``ChainTransfer.claim``, ``claimed_tzs``) is in the rows when the reader looked the
    claims up beside the read (``claim_marks``); rows without it are looked up here first.
    Elsewhere (SQLite) bulk_create, and the matching marks the rows."""
    if not rows:
        return
    shared = shared or {}
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**row, **shared) for row in rows], batch_size=1000, ignore_conflicts=True
        )
        return
    if model is ChainTransfer and "claim" not in rows[0]:
        claim_marks(rows)
    fields = [f for f in model._meta.concrete_fields if f.attname in rows[0]]
    constants = [model._meta.get_field(name) for name in shared]
    columns = [_copy_column(list(map(itemgetter(f.attname), rows))) for f in fields]
    columns += [[_copy_value(value)] * len(rows) for value in shared.values()]
    text = "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields + constants)
    table = quote(model._meta.db_table)
    try:
        # the driver's COPY is not wrapped by Django: its errors are turned into Django's here
        with transaction.atomic(), connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                copy.write(text)
        return
    except IntegrityError:
        pass  # a row is there already: the slow way, skipping it
    stage = quote(f"{model._meta.db_table}_stage")
    types = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in fields + constants)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {stage} ({types}) ON COMMIT DROP")
        with cursor.copy(f"COPY {stage} FROM STDIN") as copy:
            copy.write(text)
        # Tables and columns come from the models; the values came by COPY.
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        cursor.execute(f"DROP TABLE {stage}")


# the characters COPY's text format escapes
_COPY_SPECIALS = ("\\", "\t", "\n", "\r")


def _copy_column(values: list) -> list[str]:
    """One column's values in COPY's text format. A column of plain strings (hashes,
    addresses, kinds: the bulk of the rows) is checked once for the characters COPY escapes
    and is then sent as it is; a column of ints is written with ``str`` (exact, uint256
    too); anything else value by value."""
    kinds = set(map(type, values))
    if kinds == {str}:
        joined = "".join(values)
        # four substring searches (memchr speed) rather than a regex or isalnum, which test
        # character by character
        if not any(special in joined for special in _COPY_SPECIALS):
            return values
    elif kinds == {int}:
        return list(map(str, values))
    return [_copy_value(value) for value in values]


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)  # ints (uint256 amounts too: exact) and Decimals


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


def _step_marked(stream: Stream, step: tuple) -> tuple:
    """The step with its rows' claim markers looked up (``Stream.marks``), if the stream has
    any."""
    if stream.marks is None:
        return step
    start, end, end_hash, rows = step
    return start, end, end_hash, stream.marks(rows)


def _steps_read(client: NtzsClient, stream: Stream, *, start: int, up_to: int):
    """The steps from ``start`` to ``up_to`` in order, each read whole or not at all, with
    their claim markers. A run of one step (the usual 15-second run) does it all here. A
    longer history is a pipeline of three: a thread reads step n + 2 from the node while
    another looks up the claim markers of step n + 1 in the database and the caller writes
    step n (each waits on another process: the node, a database session, another), so a
    long history is indexed in about the time of the slowest of the three, not their sum.
    A failure is raised where its step comes, after the steps before it were written. The
    threads only read, one step ahead each; closing the generator stops them."""
    ranges = [
        (s, min(s + BLOCKS_PER_WRITE - 1, up_to)) for s in range(start, up_to + 1, BLOCKS_PER_WRITE)
    ]
    if len(ranges) <= 1:
        for step_start, end in ranges:
            yield _step_marked(stream, _step_read(client, stream, step_start, end))
        return
    stop = threading.Event()
    read = _ahead(
        (_step_read(client, stream, step_start, end) for step_start, end in ranges),
        name=f"index-{stream.name}-read",
        stop=stop,
    )
    marked = _ahead(
        (_step_marked(stream, step) for step in read), name=f"index-{stream.name}-marks", stop=stop
    )
    # The automatic cyclic collector is paused while a long history runs: the steps are
    # hundreds of thousands of acyclic dicts and lists (the node's JSON, the rows), and its
    # passes over them, and over the whole process as they age, cost about a tenth of the
    # run (docs/benchmarks.md). The young generations are collected once per step instead,
    # so what a step leaves behind (Django's own cycles, if any) is freed as before.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for step in marked:
            yield step
            gc.collect(1)
    finally:
        stop.set()
        marked.close()
        if collecting:
            gc.enable()


def _ahead(items, *, name: str, stop: threading.Event):
    """``items`` (a generator) produced by a thread of its own, one item ahead of the
    consumer; an exception is raised where its item comes. ``stop`` (the whole pipeline's)
    ends the thread and this generator early, as does closing this generator."""
    box: queue.Queue = queue.Queue(maxsize=1)
    done = object()
    closed = threading.Event()

    def put(entry) -> bool:
        while not (stop.is_set() or closed.is_set()):
            try:
                box.put(entry, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((None, item)):
                    return
            put((done, None))
        except Exception as exc:  # handed to the consumer, raised at its item
            put((exc, None))
        finally:
            items.close()
            connections.close_all()  # this thread's own, if it opened one

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                error, item = box.get(timeout=0.2)
            except queue.Empty:
                if stop.is_set():
                    return
                if not thread.is_alive() and box.empty():
                    raise ChainUnavailable(
                        "The indexer's reader stopped; the next run reads the blocks again."
                    ) from None
                continue
            if error is done:
                return
            if error is not None:
                raise error
            yield item
    finally:
        closed.set()
        thread.join()


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
