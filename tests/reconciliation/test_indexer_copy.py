"""The indexer's COPY write and its read pipeline (issue 14's speed work): rows go into the
table by COPY, a row stored already is skipped as ON CONFLICT DO NOTHING would (never an
error, never a second row), any text survives COPY's format exactly, and a history of several
steps gets its claim markers from the pipeline, before the matching runs."""

# ruff: noqa: F811 - tests take the imported fixtures as arguments
from __future__ import annotations

import pytest

from minting.models import MintLogClaim
from minting.rpc import mint_client
from reconciliation.models import ChainTransfer
from reconciliation.services import indexer
from reconciliation.services.indexer import _insert_ignoring_conflicts, chain_index
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures
from tests.reconciliation.test_claim_markers import minted_deposit
from tests.reconciliation.test_indexer import HOLDER, indexed_chain, mint  # noqa: F401

CHAIN = 31337
UNITS = 10**18
ZERO = "0x" + "00" * 20


def row(n: int, *, block_hash: str = "0x" + "ab" * 32, safe_executed=None) -> dict:
    return {
        "chain_id": CHAIN,
        "tx_hash": "0x" + f"{n:064x}",
        "log_index": 0,
        "block_number": 40 + n,
        "block_hash": block_hash,
        "from_address": ZERO,
        "to_address": HOLDER,
        "amount_units": n * UNITS,
        "kind": "mint",
        "safe_executed": safe_executed,
    }


@pytest.mark.django_db
def test_a_row_stored_already_is_skipped_and_the_others_are_written():
    _insert_ignoring_conflicts(ChainTransfer, [row(1)], shared={"indexed_at": "2026-12-02"})

    _insert_ignoring_conflicts(
        ChainTransfer,
        [row(1, block_hash="0x" + "cd" * 32), row(2), row(3)],
        shared={"indexed_at": "2026-12-02"},
    )

    stored = dict(ChainTransfer.objects.values_list("tx_hash", "block_hash"))
    assert len(stored) == 3
    assert stored[row(1)["tx_hash"]] == "0x" + "ab" * 32  # the first write's row, untouched
    assert int(ChainTransfer.objects.get(tx_hash=row(3)["tx_hash"]).amount_units) == 3 * UNITS


@pytest.mark.django_db
def test_text_with_copys_special_characters_and_nulls_is_stored_exactly():
    awkward = "0x\\N\ttab\nnew\rline\\"
    rows = [
        row(1, block_hash=awkward, safe_executed=True),
        row(2, safe_executed=False),
        row(3, safe_executed=None),
    ]

    _insert_ignoring_conflicts(ChainTransfer, rows, shared={"indexed_at": "2026-12-02"})

    stored = {
        r.tx_hash: (r.block_hash, r.safe_executed, r.claim) for r in ChainTransfer.objects.all()
    }
    assert stored == {
        rows[0]["tx_hash"]: (awkward, True, None),
        rows[1]["tx_hash"]: ("0x" + "ab" * 32, False, None),
        rows[2]["tx_hash"]: ("0x" + "ab" * 32, None, None),
    }


@pytest.mark.django_db(transaction=True)  # the pipeline's threads see committed claims only
def test_a_long_history_gets_its_claim_markers_from_the_pipeline(indexed_chain, amina, monkeypatch):
    chain = indexed_chain
    claimed = {}
    for tzs in (1_000, 2_000, 3_000, 4_000, 5_000):
        receipt = mint(chain, HOLDER, tzs)
        log = receipt["logs"][0]
        key = ("0x" + bytes(receipt["transactionHash"]).hex(), log["logIndex"])
        if tzs != 3_000:  # one mint nobody claimed
            MintLogClaim.objects.create(
                chain_id=CHAIN, tx_hash=key[0], log_index=key[1], deposit=minted_deposit(amina, tzs)
            )
            claimed[key] = tzs
    monkeypatch.setattr(indexer, "BLOCKS_PER_WRITE", 2)  # several steps: the threaded path

    counts = chain_index(client=mint_client())  # the indexer alone: no matching pass

    assert counts["transfers"]["added"] == 5
    marks = {
        (r.tx_hash, r.log_index): (r.claim, r.claimed_tzs)
        for r in ChainTransfer.objects.filter(kind="mint")
    }
    assert {key: mark for key, mark in marks.items() if mark[0]} == {
        key: ("deposit", tzs) for key, tzs in claimed.items()
    }
    assert sum(1 for claim, _ in marks.values() if claim is None) == 1
