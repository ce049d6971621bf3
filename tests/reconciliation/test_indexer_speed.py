"""The indexer's speed work of issue 14 keeps every answer: the claim lookup by transaction
marks each log exactly as the matching's own definition does (a deposit with its amount, an
entry, a superseded claim, none; a claim of another log of the same transaction is not
borrowed), the address index without mints still serves an address's outgoing transfers,
the read's consistency check still refuses a block named with two hashes, and the paused
cyclic collector of a long history is restored after it."""

# ruff: noqa: F811 - tests take the imported fixtures as arguments
from __future__ import annotations

import gc
import uuid

import pytest
from django.db import connection

from minting.models import MintLogClaim
from minting.rpc import mint_client
from reconciliation.models import ChainTransfer
from reconciliation.selectors import address_transfers
from reconciliation.services import indexer
from reconciliation.services.indexer import _consistent, chain_index, claim_marks
from reconciliation.services.matching import mint_log_claims_mark
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures
from tests.reconciliation.test_claim_markers import minted_deposit
from tests.reconciliation.test_indexer import HOLDER, OTHER, indexed_chain, mint  # noqa: F401

CHAIN = 31337
UNITS = 10**18
ZERO = "0x" + "00" * 20


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def row(n: int, log_index: int, *, source: str = ZERO, target: str = HOLDER) -> dict:
    return {
        "chain_id": CHAIN,
        "tx_hash": tx(n),
        "log_index": log_index,
        "block_number": 100 + n,
        "block_hash": "0x" + f"{100 + n:064x}",
        "from_address": source,
        "to_address": target,
        "amount_units": 7 * UNITS,
        "kind": "mint" if source == ZERO else "transfer",
        "safe_executed": None,
    }


def claim(n: int, log_index: int, **fields) -> MintLogClaim:
    return MintLogClaim.objects.create(chain_id=CHAIN, tx_hash=tx(n), log_index=log_index, **fields)


@pytest.mark.django_db
def test_the_lookup_by_transaction_marks_each_log_as_the_matching_defines_it(amina):
    first, second, moved = (minted_deposit(amina, tzs) for tzs in (1_000, 2_000, 3_000))
    claim(1, 0, deposit=first)  # transaction 1 holds four mint logs, each claimed differently
    claim(1, 1, reconciliation_entry_id=uuid.uuid4())
    old = claim(1, 2, deposit=moved)
    claim(9, 4, deposit=moved, supersedes=old)  # a reorg moved that mint elsewhere
    claim(1, 7, reconciliation_entry_id=uuid.uuid4())  # a log of transaction 1 not in the step
    claim(2, 0, deposit=second)
    rows = [row(1, 0), row(1, 1), row(1, 2), row(1, 3), row(2, 0), row(3, 0)]
    rows.append(row(1, 7, source=HOLDER, target=OTHER))  # not a mint: never marked

    marked = {
        (r["tx_hash"], r["log_index"]): (r["claim"], r["claimed_tzs"]) for r in claim_marks(rows)
    }

    assert marked == {
        (tx(1), 0): ("deposit", 1_000),
        (tx(1), 1): ("entry", None),
        (tx(1), 2): ("superseded", None),
        (tx(1), 3): (None, None),
        (tx(2), 0): ("deposit", 2_000),
        (tx(3), 0): (None, None),
        (tx(1), 7): (None, None),
    }
    # the same rows stored unmarked and marked by the matching's own pass: the same markers
    ChainTransfer.objects.bulk_create(
        [
            ChainTransfer(**{k: v for k, v in r.items() if k not in ("claim", "claimed_tzs")})
            for r in rows
        ]
    )
    mint_log_claims_mark(CHAIN)
    by_matching = {
        (r.tx_hash, r.log_index): (r.claim, r.claimed_tzs) for r in ChainTransfer.objects.all()
    }
    assert by_matching == marked


@pytest.mark.django_db
def test_an_addresss_outgoing_transfers_are_read_through_the_from_index_without_mints():
    rows = [row(n, 0) for n in range(1, 6)]  # mints to HOLDER
    rows += [row(n, 1, source=HOLDER, target=OTHER) for n in range(1, 4)]
    ChainTransfer.objects.bulk_create([ChainTransfer(**r) for r in rows])
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'chain_transfer_from'")
        (definition,) = cursor.fetchone()
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: show what can serve
    outgoing = ChainTransfer.objects.filter(chain_id=CHAIN, from_address=HOLDER).order_by(
        "-block_number", "-log_index"
    )

    plan = outgoing.explain()

    assert "WHERE" in definition and ZERO in definition  # the mints are left out
    assert "chain_transfer_from" in plan
    page = address_transfers(address=HOLDER, chain_id=CHAIN)
    assert [(r.kind, r.tx_hash) for r in page.rows] == [
        (kind, tx(n))
        for n in (5, 4, 3, 2, 1)
        for kind in (("transfer", "mint") if n <= 3 else ("mint",))
    ]


def test_a_block_named_with_two_hashes_means_the_chain_moved_during_the_read():
    def log(number: int, block_hash: str) -> dict:
        return {"blockNumber": hex(number), "blockHash": block_hash}

    one, two = "0x" + "aa" * 32, "0x" + "bb" * 32

    assert _consistent([log(5, one), log(5, one.upper().replace("0X", "0x")), log(6, two)], 6, two)
    assert not _consistent([log(5, one), log(5, two)], 6, two)
    assert not _consistent([log(5, one), log(6, one)], 6, two)  # the last block was replaced
    assert not _consistent([log(5, one), {"blockNumber": 5, "blockHash": two}], 6, two)


@pytest.mark.django_db(transaction=True)  # the pipeline's threads read committed rows only
@pytest.mark.parametrize("collecting", [True, False])
def test_the_cyclic_collector_is_paused_for_a_long_history_and_restored_after(
    indexed_chain, monkeypatch, collecting
):
    for tzs in (1_000, 2_000, 3_000):
        mint(indexed_chain, HOLDER, tzs)
    monkeypatch.setattr(indexer, "BLOCKS_PER_WRITE", 2)  # several steps: the pipeline
    during = []
    write = indexer._write
    monkeypatch.setattr(
        indexer, "_write", lambda *a, **kw: during.append(gc.isenabled()) or write(*a, **kw)
    )
    if not collecting:
        gc.disable()
    try:
        counts = chain_index(client=mint_client())
        after = gc.isenabled()
    finally:
        gc.enable()

    assert counts["transfers"]["added"] == 3
    assert len(during) > 2 and not any(during)
    assert after is collecting
