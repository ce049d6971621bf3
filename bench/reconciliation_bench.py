# ruff: noqa: S608  (the seed's SQL is built from this file's constants; nothing from outside)
"""Reconciliation at a real issuer's volume (``make bench-reconciliation``; issue 14): not a test.

On a throwaway PostgreSQL and Redis (the tests' own, tests/support/services.py) and a local
anvil with the compiled NTZS token (tests/support/chain_fixtures.py), in one run:

1. **Chain.** A small helper contract (compiled here with the project's solc-js through
   minting/contracts/compile.js into a temporary file; the committed artifact is untouched)
   holds MINTER_ROLE and mints ten times per call. BENCH_BLOCKS (10,000) transactions are sent
   with automine off and a block gas limit that fits exactly one of them, then mined with
   ``anvil_mine``: BENCH_BLOCKS blocks holding 10 x BENCH_BLOCKS (100,000) mint logs to a few
   thousand wallets.
2. **Books.** BENCH_DEPOSITS (1,000,000) ``minted`` deposits of BENCH_CUSTOMERS (5,000)
   customers with their MintTransaction and MintLogClaim rows, made by the server itself
   (``INSERT … SELECT … FROM generate_series``, foreign keys and secondary indexes deferred as
   in a bulk load). The first 100,000 claim the real mint logs (same wallet, same amount);
   the others claim logs that exist only in the database.
3. **Indexer throughput.** The raw ``eth_getLogs`` reads of the same ranges the indexer makes
   (its write steps of BLOCKS_PER_WRITE blocks, split into MINT_LOGS_MAX_RANGE calls, both
   streams), as plain JSON-RPC over one HTTP connection with the JSON decoded and nothing else;
   then the indexer (``index_chain_run``: both streams from the deploy block, then the role
   check and the matching) from scratch, BENCH_INDEXER_RUNS (3) times (its tables emptied
   between runs). Blocks/s and logs/s of each, medians, and their ratio (target >= 0.5).
4. **Snapshot at scale.** ChainTransfer rows for the 900,000 claims whose logs are only in
   the database (so they count as indexed, at blocks up to the cursor) and a few
   reconciliation entries; their claim markers set once by the matching's marking pass
   (timed: what the first pass after the markers' migration does); then
   ``supply_snapshot_take`` against the node BENCH_RUNS (5) times: median wall time and
   the queries one snapshot makes (target: a handful of queries and well under a second).
   The on-chain supply is the 100,000 real mints, so the discrepancy is minus the seeded
   deposits without a log on chain plus the entries: the table shows it next to that
   expected figure; DB minted is checked against the claims' own definition.

Exits 1 only when something fails to run (or a figure is not the one the seed implies).
Knobs: BENCH_DEPOSITS, BENCH_CUSTOMERS, BENCH_BLOCKS, BENCH_RUNS, BENCH_INDEXER_RUNS;
BENCH_PROFILE=1 prints a cProfile of each indexer run.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

N_DEPOSITS = int(os.environ.get("BENCH_DEPOSITS", "1000000"))
N_CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "5000"))
N_BLOCKS = int(os.environ.get("BENCH_BLOCKS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
INDEXER_RUNS = int(os.environ.get("BENCH_INDEXER_RUNS", "3"))
MINTS_PER_TX = 10
N_LOGS = N_BLOCKS * MINTS_PER_TX
UNITS = 10**18
WALLET_BASE = 0x100000  # wallet u (1-based) is the address 0x100000 + u - 1
SEND_BATCH = 500  # transactions per JSON-RPC batch, then mined
TX_GAS = 1_500_000  # declared per transaction; a block takes one (anvil fits a transaction
# while the gas used so far plus the one declared stays within the limit; each uses > 100,000)
BLOCK_GAS_LIMIT = TX_GAS + 100_000
N_ENTRIES = 5

MINT_TEN_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IMintable {
    function mint(address to, uint256 amount) external;
}

/// Ten mints per call: mint n = seed * 10 + i goes to wallet 0x100000 + n % CUSTOMERS with
/// (1000 + n % 7000) nTZS (the benchmark's books repeat both).
contract MintTen {
    function mintTen(address token, uint256 seed) external {
        for (uint256 i = 0; i < 10; i++) {
            uint256 n = seed * 10 + i;
            IMintable(token).mint(
                address(uint160(0x100000 + (n % CUSTOMERS))), (1000 + (n % 7000)) * 1e18
            );
        }
    }
}
"""


def mint_amount_tzs(n: int) -> int:
    """Mint (and deposit) n's amount, 0-based: as MintTen computes it."""
    return 1000 + n % 7000


# --- The chain ---------------------------------------------------------------------------------


def start_chain():
    from tests.support.anvil import AnvilNode
    from tests.support.chain_fixtures import deploy_ntzs

    # --prune-history: no past states kept (the snapshot reads the supply at the head); anvil
    # otherwise gets slower per block as tens of thousands of states pile up.
    node = AnvilNode(extra_args=("--prune-history",))
    return node, deploy_ntzs(node)


def mint_ten_deploy(token) -> str:
    """Compile MintTen with the project's solc-js, deploy it, grant it MINTER_ROLE."""
    from tests.support.chain_fixtures import role_id, transact

    with tempfile.TemporaryDirectory(prefix="ntzs-bench-") as tmp:
        source = Path(tmp, "MintTen.sol")
        source.write_text(MINT_TEN_SOURCE.replace("CUSTOMERS", str(N_CUSTOMERS)))
        artifact = Path(tmp, "MintTen.json")
        subprocess.run(
            [
                "node",
                str(REPO / "minting" / "contracts" / "compile.js"),
                "--source",
                str(source),
                "--contract",
                "MintTen",
                "--artifact",
                str(artifact),
            ],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        compiled = json.loads(artifact.read_text())
    factory = token.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    helper = transact(token.w3, token.admin_key, factory.constructor())["contractAddress"]
    transact(
        token.w3,
        token.admin_key,
        token.contract.functions.grantRole(role_id("MINTER_ROLE"), helper),
    )
    return helper


def chain_fill(node, token, helper: str) -> list[str]:
    """N_BLOCKS blocks of one MintTen call each; returns the transaction hashes in order."""
    import requests
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    from tests.support.anvil import DEV_ADDRESSES

    sender = DEV_ADDRESSES[7]  # an unlocked anvil account: the node signs
    selector = function_signature_to_4byte_selector("mintTen(address,uint256)")
    session = requests.Session()

    def rpc(payload):
        answer = session.post(node.url, json=payload, timeout=600)
        answer.raise_for_status()
        return answer.json()

    node.rpc("evm_setAutomine", False)
    node.rpc("evm_setBlockGasLimit", hex(BLOCK_GAS_LIMIT))
    nonce = int(node.rpc("eth_getTransactionCount", sender, "latest"), 16)
    hashes: list[str] = []
    for offset in range(0, N_BLOCKS, SEND_BATCH):
        batch = []
        for seed in range(offset, min(offset + SEND_BATCH, N_BLOCKS)):
            data = selector + encode(["address", "uint256"], [token.address, seed])
            batch.append(
                {
                    "jsonrpc": "2.0",
                    "id": seed,
                    "method": "eth_sendTransaction",
                    "params": [
                        {
                            "from": sender,
                            "to": helper,
                            "data": "0x" + data.hex(),
                            "gas": hex(TX_GAS),
                            "nonce": hex(nonce + seed),
                        }
                    ],
                }
            )
        answers = sorted(rpc(batch), key=lambda a: a["id"])
        refused = [a["error"] for a in answers if "error" in a]
        if refused:
            raise SystemExit(f"anvil refused a MintTen transaction: {refused[0]}")
        hashes += [a["result"] for a in answers]
        mined = rpc(
            {"jsonrpc": "2.0", "id": 0, "method": "anvil_mine", "params": [hex(len(batch))]}
        )
        if "error" in mined:
            raise SystemExit(f"anvil_mine failed: {mined['error']}")
    last = token.w3.eth.get_transaction_receipt(hashes[-1])
    first = token.w3.eth.get_transaction_receipt(hashes[0])
    if last["status"] != 1 or len(last["logs"]) != MINTS_PER_TX:
        raise SystemExit("the last MintTen transaction did not mint ten times")
    if last["blockNumber"] - first["blockNumber"] != N_BLOCKS - 1:
        raise SystemExit(
            "the MintTen transactions did not land one per block:"
            f" blocks {first['blockNumber']}-{last['blockNumber']}"
        )
    return hashes


# --- Django ------------------------------------------------------------------------------------


def configure(node, token) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "BASE_SEPOLIA_RPC_URL": node.url,
            "CHAIN_ID": "31337",
            "NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA": token.address,
            "MINTER_PRIVATE_KEY": token.minter_key,
            "MINT_CONFIRMATIONS": "1",
            "NTZS_DEPLOY_BLOCK": str(token.deploy_block),
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from minting.models import TokenDeployment

    # As `deploy_ntzs` records it: the indexer then knows the token had no supply before its
    # deploy block (no archive read) and the untracked-mint alarm is armed, as in production.
    block = token.w3.eth.get_block(token.deploy_block)
    TokenDeployment.objects.create(
        chain_id=int(os.environ["CHAIN_ID"]),
        contract_address=token.address,
        deploy_block=token.deploy_block,
        deploy_block_hash="0x" + bytes(block["hash"]).hex(),
        tx_hash="0x" + bytes(block["transactions"][0]).hex(),
        deployer_address=token.admin_address,
    )


def _run(name: str, sql: str, timings: dict) -> None:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cur:
        cur.execute(sql)  # no parameters: "%" is SQL's modulo here
    timings[name] = time.monotonic() - started
    print(f"  {name}: {timings[name]:.1f} s", flush=True)


def _deferred_indexes(cur, tables: list[str]) -> list[tuple[str, str]]:
    """Drop the secondary indexes of ``tables`` (built again, sorted, at the end)."""
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        [tables],
    )
    deferred = cur.fetchall()
    for name, _definition in deferred:
        cur.execute(f'DROP INDEX "{name}"')
    return deferred


def books_seed(tx_hashes: list[str], chain_id: int, contract: str) -> dict:
    """The deposits, their mint transactions and claims; returns seconds per step. Each table
    is filled in creation order, as a live table grows (its random UUID keys stay random in
    their indexes): the indexer reads a deposit's amount for each claimed log it stores, and
    a heap in key order would scatter 100,000 recent deposits over every page of a million."""
    from django.db import connection, transaction

    timings: dict[str, float] = {}
    n, customers, real = N_DEPOSITS, N_CUSTOMERS, min(N_LOGS, N_DEPOSITS)
    wallet = f"'0x' || lpad(to_hex({WALLET_BASE} + u - 1), 40, '0')"
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            deferred = _deferred_indexes(
                cur,
                ["deposits_depositrequest", "minting_minttransaction", "minting_mintlogclaim"],
            )
            # The real mint logs: deposit g (1-based) claims mint n = g - 1, which is log
            # n % 10 of transaction n // 10 (one transaction per block: log index = i).
            cur.execute("CREATE TEMP TABLE bench_log (g integer, tx_hash text, log_index integer)")
            rows = io.StringIO()
            for k, tx_hash in enumerate(tx_hashes):
                for i in range(MINTS_PER_TX):
                    g = k * MINTS_PER_TX + i + 1
                    if g <= real:
                        rows.write(f"{g}\t{tx_hash}\t{i}\n")
            with cur.copy("COPY bench_log FROM STDIN") as copy:
                copy.write(rows.getvalue())
        _run(
            "bank",
            "INSERT INTO deposits_bank (id, name, status, is_zenopay_settlement, account_name,"
            " account_number, transfer_instructions) VALUES (md5('bank')::uuid,"
            " 'Settlement', 'active', true, 'nTZS Issuance Ltd', '01J0000000001', '')",
            timings,
        )
        _run(
            "customers",
            "INSERT INTO accounts_user (id, password, last_login, is_superuser, email,"
            " full_name, phone, is_staff, is_active, date_joined)"
            " SELECT md5('user' || u)::uuid, '!', NULL, false,"
            " 'customer' || u || '@bench.ntzs.test', 'Customer ' || u,"
            " '+2557' || lpad(u::text, 8, '0'), false, true, now() - interval '400 days'"
            f" FROM generate_series(1, {customers}) AS u",
            timings,
        )
        _run(
            "wallets",
            "INSERT INTO accounts_wallet (id, user_id, chain, address, created_at, verified_at,"
            " verification_method, closed_at, closed_reason)"
            f" SELECT md5('wallet' || u)::uuid, md5('user' || u)::uuid, 'base', {wallet},"
            " now() - interval '400 days', now() - interval '400 days', 'message_signature',"
            f" NULL, '' FROM generate_series(1, {customers}) AS u",
            timings,
        )
        _run(
            "plan",
            "CREATE TEMP TABLE bench_deposit AS SELECT g, md5('dep' || g)::uuid AS id,"
            f" 1 + (g - 1) % {customers} AS u, 1000 + (g - 1) % 7000 AS amount,"
            f" now() - (({n} - g) * interval '30 seconds') AS created_at,"
            " coalesce(l.tx_hash, '0x' || md5('tx' || g) || md5('tx' || g || 'b')) AS tx_hash,"
            " coalesce(l.log_index, 0) AS log_index"
            f" FROM generate_series(1, {n}) AS g LEFT JOIN bench_log l USING (g)",
            timings,
        )
        _run(
            "deposits",
            "INSERT INTO deposits_depositrequest (id, user_id, bank_id, wallet_id, chain,"
            " amount_tzs, status, status_reason, payment_provider, buyer_phone, initiation,"
            " initiation_error, transfer_reference, psp_reference, psp_channel,"
            " fiat_confirmed_at, fiat_confirmed_by_id, idempotency_key, request_fingerprint,"
            " hold_reason, hold_details, next_poll_at, last_checked_at, poll_attempts,"
            " mint_tx_hash, minted_at, cancelled_at, created_at, updated_at)"
            " SELECT id, md5('user' || u)::uuid, md5('bank')::uuid, md5('wallet' || u)::uuid,"
            " 'base', amount, 'minted', '', 'zenopay', '+2557' || lpad(u::text, 8, '0'),"
            " 'requested', '', NULL, 'ZP' || (100000000 + g), 'MPESA-TZ',"
            " created_at + interval '2 minutes', NULL, NULL, md5('fp' || g), '', '{}', NULL,"
            " created_at + interval '1 minute', 1, tx_hash, created_at + interval '3 minutes',"
            " NULL, created_at, created_at + interval '3 minutes' FROM bench_deposit ORDER BY g",
            timings,
        )
        _run(
            "mint transactions",
            "INSERT INTO minting_minttransaction (id, deposit_id, chain_id, contract_address,"
            " to_address, amount_units, source, status, reserved_day, reserved_tzs,"
            " cap_deferred_on, uses_deposit_ref, tx_hash, log_index, logs_from_block,"
            " finality_checked_at, error, attempt_count, created_at, updated_at)"
            f" SELECT md5('mt' || g)::uuid, id, {chain_id}, '{contract}', {wallet},"
            f" amount * {UNITS}::numeric, 'worker', 'minted', NULL, 0, NULL, false, tx_hash,"
            " log_index, 1, created_at + interval '10 minutes', '', 1,"
            " created_at + interval '2 minutes', created_at + interval '3 minutes'"
            " FROM bench_deposit ORDER BY g",
            timings,
        )
        _run(
            "mint log claims",
            "INSERT INTO minting_mintlogclaim (chain_id, tx_hash, log_index, deposit_id,"
            " supersedes_id, reconciliation_entry_id, claimed_at)"
            f" SELECT {chain_id}, tx_hash, log_index, id, NULL, NULL,"
            " created_at + interval '3 minutes' FROM bench_deposit ORDER BY g",
            timings,
        )
        started = time.monotonic()
        with connection.cursor() as cur:
            for _name, definition in deferred:
                cur.execute(definition)
            cur.execute("DROP TABLE bench_log")
        timings["indexes"] = time.monotonic() - started
        print(f"  indexes ({len(deferred)}): {timings['indexes']:.1f} s", flush=True)
    analyse(timings)
    return timings


def analyse(timings: dict) -> None:
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")  # what autovacuum leaves behind on a live system
    timings["vacuum analyze"] = time.monotonic() - started
    print(f"  vacuum analyze: {timings['vacuum analyze']:.1f} s", flush=True)


def database_only_transfers_seed(chain_id: int, up_to_block: int, first_block: int) -> dict:
    """ChainTransfer rows for the claims whose logs exist only in the database (so they count
    as indexed, at blocks up to the cursor), and a few reconciliation entries."""
    from django.db import connection, transaction

    from accounts.models import User
    from reconciliation.models import ReconciliationEntry

    timings: dict[str, float] = {}
    real = min(N_LOGS, N_DEPOSITS)
    span = max(up_to_block - first_block, 1)
    wallet = f"'0x' || lpad(to_hex({WALLET_BASE} + (g - 1) % {N_CUSTOMERS}), 40, '0')"
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            deferred = _deferred_indexes(cur, ["reconciliation_chaintransfer"])
        _run(
            "chain transfers (database only)",
            "INSERT INTO reconciliation_chaintransfer (chain_id, tx_hash, log_index,"
            " block_number, block_hash, from_address, to_address, amount_units, kind,"
            " safe_executed, indexed_at)"
            f" SELECT {chain_id}, '0x' || md5('tx' || g) || md5('tx' || g || 'b'), 0,"
            f" {first_block} + (g::bigint * 7919) % {span},"
            " '0x' || md5('block' || g) || md5('block' || g || 'b'),"
            f" '0x{'0' * 40}', {wallet}, (1000 + (g - 1) % 7000) * {UNITS}::numeric, 'mint',"
            f" NULL, now() FROM generate_series({real + 1}, {N_DEPOSITS}) AS g",
            timings,
        )
        started = time.monotonic()
        with connection.cursor() as cur:
            for _name, definition in deferred:
                cur.execute(definition)
        timings["indexes"] = time.monotonic() - started
        print(f"  indexes ({len(deferred)}): {timings['indexes']:.1f} s", flush=True)
    maker = User.objects.create_user(email="maker@bench.ntzs.test", password="x", is_staff=True)
    checker = User.objects.create_user(email="checker@bench.ntzs.test", password="x", is_staff=True)
    for index in range(N_ENTRIES):
        ReconciliationEntry.objects.create(
            chain_id=chain_id,
            block_number=first_block + index,
            amount_units=(-1) ** index * (index + 1) * UNITS // 2,  # fractions of nTZS too
            entry_type=ReconciliationEntry.EntryType.OTHER,
            reason="Benchmark entry.",
            created_by=maker,
            approved_by=checker,
        )
    analyse(timings)
    return timings


# --- Indexer throughput ------------------------------------------------------------------------


def raw_get_logs(node, token, first: int, last: int) -> dict:
    """The indexer's eth_getLogs calls (write steps of BLOCKS_PER_WRITE, calls of
    MINT_LOGS_MAX_RANGE, both streams' topics) as plain JSON-RPC: no web3, no rows."""
    import requests
    from django.conf import settings

    from reconciliation.services.indexer import BLOCKS_PER_WRITE, STREAMS

    session = requests.Session()
    step = max(settings.MINT_LOGS_MAX_RANGE, 1)
    logs = calls = 0
    started = time.perf_counter()
    for stream in STREAMS:
        for write_start in range(first, last + 1, BLOCKS_PER_WRITE):
            write_end = min(write_start + BLOCKS_PER_WRITE - 1, last)
            for start in range(write_start, write_end + 1, step):
                end = min(start + step - 1, write_end)
                answer = session.post(
                    node.url,
                    json={
                        "jsonrpc": "2.0",
                        "id": calls,
                        "method": "eth_getLogs",
                        "params": [
                            {
                                "address": token.address,
                                "fromBlock": hex(start),
                                "toBlock": hex(end),
                                "topics": stream.topics,
                            }
                        ],
                    },
                    timeout=600,
                ).json()
                logs += len(answer["result"])
                calls += 1
    return {"seconds": time.perf_counter() - started, "logs": logs, "calls": calls}


def indexer_tables_empty() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE reconciliation_chaintransfer, reconciliation_tokenroleevent,"
            " reconciliation_indexercursor"
        )
        cur.execute("TRUNCATE core_alert CASCADE")


class Stopwatch:
    """Seconds spent in a few functions during one indexer run: each is swapped for a timed
    wrapper of itself while the run lasts (instrumentation only; the same code runs)."""

    def __init__(self, targets: dict):
        self.targets = targets  # label -> (owner, attribute name)
        self.seconds = dict.fromkeys(targets, 0.0)
        self.saved: list = []

    def __enter__(self):
        for label, (owner, name) in self.targets.items():
            original = getattr(owner, name)
            self.saved.append((owner, name, original))
            setattr(owner, name, self._timed(label, original))
        return self

    def _timed(self, label, original):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        return timed

    def __exit__(self, *exc_info):
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)


def indexer_run() -> dict:
    from minting.breaker import rpc_breaker
    from minting.chain import NtzsClient
    from reconciliation.services import indexer, matching
    from reconciliation.services.matching import index_chain_run

    rpc_breaker().reset()
    # The streams hold their row builders: the stream tuple is rebuilt with timed ones.
    watch = Stopwatch(
        {
            "eth_getLogs (logs_read)": (NtzsClient, "logs_read"),
            "block hashes": (NtzsClient, "block_hashes"),
            "write (rows + cursor)": (indexer, "_write"),
            "role holders check": (matching, "token_role_holders_check"),
            "matching": (matching, "mint_logs_match"),
        }
    )
    watch.seconds["logs -> rows"] = 0.0
    watch.seconds["claim lookups"] = 0.0
    profiler = cProfile.Profile() if os.environ.get("BENCH_PROFILE") == "1" else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    with watch, _timed_row_builders(indexer, watch):
        counts = index_chain_run()
    seconds = time.perf_counter() - started
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    transfers = counts.get("transfers") or {}
    if transfers.get("outcome") != "indexed":
        raise SystemExit(f"the indexer did not index: {counts}")
    return {"seconds": seconds, "counts": counts, "parts": watch.seconds}


class _timed_row_builders:  # noqa: N801  (a context manager used like a function)
    """The streams' row builders timed under the label "logs -> rows", their claim-marker
    lookups under "claim lookups"."""

    def __init__(self, indexer, watch: Stopwatch):
        self.indexer, self.watch = indexer, watch

    def __enter__(self):
        from dataclasses import replace

        self.saved = self.indexer.STREAMS
        timed = self.watch._timed
        self.indexer.STREAMS = tuple(
            replace(
                stream,
                rows=timed("logs -> rows", stream.rows),
                marks=stream.marks and timed("claim lookups", stream.marks),
            )
            for stream in self.saved
        )
        return self

    def __exit__(self, *exc_info):
        self.indexer.STREAMS = self.saved


# --- Snapshot at scale -------------------------------------------------------------------------


def snapshot_time() -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reconciliation.services.snapshots import supply_snapshot_take

    supply_snapshot_take()  # warm: connections, the client's chain proof, caches
    times, queries, snapshot = [], None, None
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            snapshot = supply_snapshot_take()
            times.append(time.perf_counter() - started)
        queries = captured.captured_queries
    return {"times": times, "queries": queries, "snapshot": snapshot}


def claims_sum_not_exists(chain_id: int, block: int) -> dict:
    """The check of the snapshot's figure: DB minted as the claims define it, the way it was
    summed before the claim markers (every current deposit claim — "not superseded" as NOT
    EXISTS — joined to the indexed mint logs at or below the block). Timed like the
    snapshot; the figure must be the snapshot's."""
    from django.db.models import Exists, OuterRef, Sum

    from minting.models import MintLogClaim
    from reconciliation.models import ChainTransfer

    claims = (
        MintLogClaim.objects.filter(chain_id=chain_id, deposit__isnull=False)
        .exclude(Exists(MintLogClaim.objects.filter(supersedes=OuterRef("pk"))))
        .filter(
            Exists(
                ChainTransfer.objects.filter(
                    chain_id=chain_id,
                    tx_hash=OuterRef("tx_hash"),
                    log_index=OuterRef("log_index"),
                    block_number__lte=block,
                )
            )
        )
    )
    times, total = [], None
    for _ in range(RUNS):
        started = time.perf_counter()
        total = claims.aggregate(total=Sum("deposit__amount_tzs"))["total"]
        times.append(time.perf_counter() - started)
    return {"times": times, "total": int(total or 0)}


def slowest_plan(queries: list[dict]) -> list[str]:
    """EXPLAIN ANALYZE of the slowest SELECT one snapshot made (where its time goes)."""
    from django.db import connection

    selects = [q for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    if not selects:
        return []
    slowest = max(selects, key=lambda q: float(q["time"]))
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
        return [row[0] for row in cur.fetchall()]


# --- Main --------------------------------------------------------------------------------------


def main() -> int:
    whole = time.monotonic()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    node, token = start_chain()
    try:
        configure(node, token)
        from django.conf import settings
        from django.db.models import Sum

        from reconciliation.models import ChainTransfer, ReconciliationEntry
        from reconciliation.services.indexer import BLOCKS_PER_WRITE

        chain_id = settings.CHAIN_ID
        started = time.monotonic()
        helper = mint_ten_deploy(token)
        tx_hashes = chain_fill(node, token, helper)
        chain_seconds = time.monotonic() - started
        head = token.w3.eth.block_number
        print(
            f"chain: {N_BLOCKS:,} blocks, {N_LOGS:,} mint logs in {chain_seconds:.0f} s"
            f" (blocks {token.deploy_block}-{head})",
            flush=True,
        )

        print(f"seed: {N_DEPOSITS:,} minted deposits, {N_CUSTOMERS:,} customers", flush=True)
        started = time.monotonic()
        books_seed(tx_hashes, chain_id, token.address)
        seed_seconds = time.monotonic() - started

        first, last = token.deploy_block, head  # what the indexer reads from scratch
        blocks = last - first + 1
        raws, runs = [], []
        for number in range(INDEXER_RUNS):
            raws.append(raw_get_logs(node, token, first, last))
            indexer_tables_empty()
            run = indexer_run()
            runs.append(run)
            print(
                f"  run {number + 1}: raw getLogs {raws[-1]['seconds']:.2f} s"
                f" ({raws[-1]['calls']} calls, {raws[-1]['logs']:,} logs);"
                f" indexer {run['seconds']:.2f} s",
                flush=True,
            )
        raw_s = statistics.median(r["seconds"] for r in raws)
        index_s = statistics.median(r["seconds"] for r in runs)
        indexed_mints = ChainTransfer.objects.filter(chain_id=chain_id, kind="mint").count()
        if indexed_mints != N_LOGS:
            raise SystemExit(f"the indexer stored {indexed_mints} mint logs, not {N_LOGS}")
        counts = runs[-1]["counts"]
        median_run = sorted(range(len(runs)), key=lambda i: runs[i]["seconds"])[len(runs) // 2]
        parts = runs[median_run]["parts"]
        index_s = runs[median_run]["seconds"] if len(runs) % 2 else index_s

        print("seed: the claims' database-only logs and the entries", flush=True)
        database_only_transfers_seed(chain_id, last, first)
        # Rows stored by SQL, as rows indexed before the claim markers existed: the matching
        # marks them once (its next pass after the migration), then snapshots sum the markers.
        from reconciliation.services.matching import mint_log_claims_mark

        started = time.perf_counter()
        marks = mint_log_claims_mark()
        mark_seconds = time.perf_counter() - started
        print(f"  claim markers of the seeded rows: {marks} in {mark_seconds:.1f} s", flush=True)
        analyse({})
        started = time.perf_counter()
        marks_again = mint_log_claims_mark()
        remark_seconds = time.perf_counter() - started
        snap = snapshot_time()
        problems: list[str] = []
        snapshot = snap["snapshot"]
        plan = slowest_plan(snap["queries"])
        alternative = claims_sum_not_exists(chain_id, snapshot.block_number)
        if alternative["total"] != snapshot.db_minted_tzs:
            problems.append(f"the old definition's sum is {alternative['total']} TZS")
        seeded_total = sum(mint_amount_tzs(g - 1) for g in range(1, N_DEPOSITS + 1))
        real_total = sum(mint_amount_tzs(n) for n in range(min(N_LOGS, N_DEPOSITS)))
        entries = ReconciliationEntry.objects.aggregate(t=Sum("amount_units"))["t"] or 0
        supply = token.contract.functions.totalSupply().call(block_identifier=last)
        expected = supply - (seeded_total * UNITS + int(entries))
        if snapshot.db_minted_tzs != seeded_total:
            problems.append(f"DB minted {snapshot.db_minted_tzs} TZS, seeded {seeded_total}")
        if snapshot.discrepancy_units is None or int(snapshot.discrepancy_units) != expected:
            problems.append(f"discrepancy {snapshot.discrepancy_units}, expected {expected}")
        if supply != real_total * UNITS:
            problems.append(f"on-chain supply {supply}, the chain's mints {real_total * UNITS}")
    finally:
        node.stop()

    median = statistics.median(snap["times"])
    rows = [
        ("machine", f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} now"),
        (
            "seed",
            f"{N_DEPOSITS:,} minted deposits + mint transactions + claims,"
            f" {N_CUSTOMERS:,} customers, {N_ENTRIES} entries: {seed_seconds:.0f} s",
        ),
        (
            "chain",
            f"{blocks:,} blocks read ({N_BLOCKS:,} of one MintTen call each),"
            f" {N_LOGS:,} mint logs: made in {chain_seconds:.0f} s",
        ),
        (
            "raw eth_getLogs",
            f"{raw_s:.2f} s (median of {INDEXER_RUNS}) = {blocks / raw_s:,.0f} blocks/s,"
            f" {N_LOGS / raw_s:,.0f} logs/s ({raws[0]['calls']} calls of"
            f" <= {settings.MINT_LOGS_MAX_RANGE} blocks in steps of {BLOCKS_PER_WRITE:,},"
            " both streams)",
        ),
        (
            "indexer",
            f"{index_s:.2f} s (median of {INDEXER_RUNS}, index_chain_run from scratch) ="
            f" {blocks / index_s:,.0f} blocks/s, {N_LOGS / index_s:,.0f} logs/s ="
            f" {raw_s / index_s:.2f} x raw (target >= 0.5)",
        ),
        (
            "indexer, where",
            ", ".join(f"{label} {seconds:.2f} s" for label, seconds in parts.items())
            + f"; the rest {index_s - sum(parts.values()):.2f} s (run {median_run + 1})",
        ),
        ("indexer counts", json.dumps(counts, default=str)),
        (
            "snapshot",
            f"median {median * 1000:.0f} ms of {RUNS} (min {min(snap['times']) * 1000:.0f},"
            f" max {max(snap['times']) * 1000:.0f}); {len(snap['queries'])} queries"
            " (target: a handful, well under a second)",
        ),
        (
            "claim markers",
            f"{marks['marked']:,} seeded rows marked once in {mark_seconds:.1f} s (one-off, as"
            f" after the migration); a matching pass then: {marks_again['marked']} marked in"
            f" {remark_seconds * 1000:.0f} ms",
        ),
        (
            "old definition",
            "DB minted as before the markers (every current deposit claim joined to the"
            " indexed logs, NOT EXISTS for 'not superseded'):"
            f" median {statistics.median(alternative['times']) * 1000:.0f} ms of {RUNS},"
            " the snapshot's figure (checked)",
        ),
        (
            "snapshot figures",
            f"block {snapshot.block_number}; on-chain {snapshot.onchain_supply_units} units;"
            f" DB minted {snapshot.db_minted_tzs:,} TZS; minted deposits"
            f" {snapshot.deposits_minted_tzs:,} TZS; reconciled {snapshot.reconciled_units}"
            f" units; in flight {snapshot.in_flight_tzs} TZS",
        ),
        (
            "discrepancy",
            f"{snapshot.discrepancy_units} units (seeded data: {N_DEPOSITS - N_LOGS:,}"
            f" deposits have logs only in the database; expected {expected})",
        ),
        ("whole run", f"{time.monotonic() - whole:.0f} s"),
    ]
    print()
    print("Reconciliation benchmark")
    for label, value in rows:
        print(f"{label:<17} {value}")
    print("\nThe snapshot's queries (ms):")
    for query in snap["queries"]:
        print(f"  {float(query['time']) * 1000:8.1f}  {query['sql'][:160]}")
    if plan:
        print("\nThe slowest query's plan (EXPLAIN ANALYZE):")
        print("\n".join("  " + line for line in plan))
    if problems:
        print("\nFigures not the ones the seed implies: " + "; ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
