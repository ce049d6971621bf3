"""The claim markers of indexed mint logs (``ChainTransfer.claim``, issue 14's benchmark): the
snapshot's DB minted is summed over them, and each matching pass only looks at unmarked rows.
The figure must stay the one the claims define — the current (not superseded) deposit claims
whose log the indexer holds as a mint at or below the block — whatever was marked yet; a claim
made after its log was indexed (an entry, an attach, the worker's confirmation) is marked by
the next pass; the indexer marks a log whose claim already exists as it stores it; a long
history is indexed in several steps, the next read while the current one is written, and a
read that fails keeps the steps before it."""

# ruff: noqa: F811 - tests take the imported fixtures as arguments
from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db.models import Exists, OuterRef, Sum

from deposits.models import DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from minting.chain import ChainUnavailable, NtzsClient
from minting.models import MintLogClaim
from reconciliation.models import ChainTransfer, IndexerCursor
from reconciliation.selectors import unclaimed_mint_logs
from reconciliation.services import indexer
from reconciliation.services.indexer import _insert_ignoring_conflicts
from reconciliation.services.matching import index_chain_run, mint_log_claims_mark
from reconciliation.services.snapshots import books_at
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures
from tests.reconciliation.test_indexer import HOLDER, indexed_chain  # noqa: F401 - fixture

CHAIN = 31337
UNITS = 10**18
ZERO = "0x" + "00" * 20


def minted_deposit(user, tzs: int) -> DepositRequest:
    deposit, _ = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=tzs,
            payment_provider="zenopay",
            wallet_id=user.test_wallet.pk,
            buyer_phone="0712345678",
        ),
    )
    DepositRequest.objects.filter(pk=deposit.pk).update(status="minted")  # set up directly
    return deposit


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def mint_row(n: int, *, block: int, tzs: int, log_index: int = 0) -> ChainTransfer:
    return ChainTransfer.objects.create(
        chain_id=CHAIN,
        tx_hash=tx(n),
        log_index=log_index,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        from_address=ZERO,
        to_address=HOLDER,
        amount_units=tzs * UNITS,
        kind="mint",
    )


def cursor_at(block: int) -> None:
    IndexerCursor.objects.create(
        name="transfers", chain_id=CHAIN, block_number=block, block_hash="0x" + "ab" * 32
    )


def claims_defined_minted(block: int) -> int:
    """DB minted as the claims define it (the sum before the markers)."""
    claims = (
        MintLogClaim.objects.filter(chain_id=CHAIN, deposit__isnull=False)
        .exclude(Exists(MintLogClaim.objects.filter(supersedes=OuterRef("pk"))))
        .filter(
            Exists(
                ChainTransfer.objects.filter(
                    chain_id=CHAIN,
                    kind="mint",
                    tx_hash=OuterRef("tx_hash"),
                    log_index=OuterRef("log_index"),
                    block_number__lte=block,
                )
            )
        )
    )
    return int(claims.aggregate(t=Sum("deposit__amount_tzs"))["t"] or 0)


@pytest.mark.django_db
def test_a_claim_made_after_its_log_was_indexed_counts_at_once_and_is_marked_next_pass(amina):
    cursor_at(100)
    deposit = minted_deposit(amina, 5_000)
    row = mint_row(1, block=50, tzs=5_000)
    assert books_at(100, chain_id=CHAIN)["db_minted_tzs"] == 0

    MintLogClaim.objects.create(
        chain_id=CHAIN, tx_hash=row.tx_hash, log_index=0, deposit=deposit
    )  # the worker's confirmation, after the indexer stored the log

    assert books_at(100, chain_id=CHAIN)["db_minted_tzs"] == 5_000  # before any marking
    assert not unclaimed_mint_logs(CHAIN).exists()
    assert mint_log_claims_mark(CHAIN) == {"marked": 1, "superseded": 0}
    row.refresh_from_db()
    assert (row.claim, row.claimed_tzs) == ("deposit", 5_000)
    assert books_at(100, chain_id=CHAIN)["db_minted_tzs"] == 5_000
    assert mint_log_claims_mark(CHAIN) == {"marked": 0, "superseded": 0}


@pytest.mark.django_db
def test_a_superseded_claim_leaves_the_sum_at_once_and_its_marker_moves(amina):
    cursor_at(100)
    deposit = minted_deposit(amina, 5_000)
    old = mint_row(1, block=40, tzs=5_000)
    first = MintLogClaim.objects.create(
        chain_id=CHAIN, tx_hash=old.tx_hash, log_index=0, deposit=deposit
    )
    mint_log_claims_mark(CHAIN)
    new = mint_row(1, block=41, tzs=5_000, log_index=2)  # the same mint at another log index

    MintLogClaim.objects.create(
        chain_id=CHAIN, tx_hash=new.tx_hash, log_index=2, deposit=deposit, supersedes=first
    )

    assert books_at(100, chain_id=CHAIN)["db_minted_tzs"] == 5_000  # once, before marking
    assert mint_log_claims_mark(CHAIN) == {"marked": 1, "superseded": 1}
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.claim, old.claimed_tzs) == ("superseded", None)
    assert (new.claim, new.claimed_tzs) == ("deposit", 5_000)
    assert books_at(100, chain_id=CHAIN)["db_minted_tzs"] == 5_000


@pytest.mark.django_db
def test_an_entry_claim_marks_its_log_without_counting_it_as_minted(amina):
    cursor_at(100)
    row = mint_row(1, block=50, tzs=300)
    MintLogClaim.objects.create(
        chain_id=CHAIN, tx_hash=row.tx_hash, log_index=0, reconciliation_entry_id=uuid.uuid4()
    )

    mint_log_claims_mark(CHAIN)

    row.refresh_from_db()
    assert (row.claim, row.claimed_tzs) == ("entry", None)
    assert not unclaimed_mint_logs(CHAIN).exists()
    assert books_at(100, chain_id=CHAIN)["db_minted_tzs"] == 0


@pytest.mark.django_db
def test_the_marked_sum_equals_the_claims_definition_marked_or_not(amina):
    cursor_at(100)
    amounts = [1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000]
    deposits = [minted_deposit(amina, tzs) for tzs in amounts]
    mint_row(0, block=10, tzs=1_000)  # claimed, counted
    mint_row(1, block=60, tzs=2_000)  # claimed, counted
    mint_row(2, block=150, tzs=3_000)  # claimed, above the block: not counted
    # deposit 3's claim has no indexed log (a missing mint): not counted
    mint_row(4, block=70, tzs=5_000)  # claimed, marked, then superseded by deposit 5's ...
    mint_row(6, block=80, tzs=9_000)  # unclaimed (untracked): not counted
    for n in range(5):
        MintLogClaim.objects.create(chain_id=CHAIN, tx_hash=tx(n), log_index=0, deposit=deposits[n])
    mint_log_claims_mark(CHAIN)
    mint_row(5, block=90, tzs=5_000)
    MintLogClaim.objects.create(  # ... which moved the mint (a reorg), not marked yet
        chain_id=CHAIN,
        tx_hash=tx(5),
        log_index=0,
        deposit=deposits[4],
        supersedes=MintLogClaim.objects.get(tx_hash=tx(4)),
    )
    mint_row(7, block=95, tzs=7_000)
    MintLogClaim.objects.create(chain_id=CHAIN, tx_hash=tx(7), log_index=0, deposit=deposits[6])

    for _ in range(2):  # before and after the next marking pass
        for block in (10, 60, 89, 90, 100, 200):
            expected = claims_defined_minted(block)
            assert books_at(block, chain_id=CHAIN)["db_minted_tzs"] == expected, block
        mint_log_claims_mark(CHAIN)
    assert books_at(100, chain_id=CHAIN)["db_minted_tzs"] == 1_000 + 2_000 + 5_000 + 7_000


@pytest.mark.django_db
def test_the_indexer_marks_a_log_whose_claim_exists_as_it_stores_it(amina):
    deposit = minted_deposit(amina, 2_500)
    MintLogClaim.objects.create(chain_id=CHAIN, tx_hash=tx(9), log_index=3, deposit=deposit)
    rows = [
        {
            "chain_id": CHAIN,
            "tx_hash": tx(9),
            "log_index": log_index,
            "block_number": 12,
            "block_hash": "0x" + "cd" * 32,
            "from_address": ZERO,
            "to_address": HOLDER,
            "amount_units": 2_500 * UNITS,
            "kind": "mint",
            "safe_executed": None,
            "indexed_at": "2026-12-02T10:00:00+00:00",
        }
        for log_index in (3, 4)
    ]

    _insert_ignoring_conflicts(ChainTransfer, rows)

    marks = dict(ChainTransfer.objects.values_list("log_index", "claim"))
    assert marks == {3: "deposit", 4: None}
    assert ChainTransfer.objects.get(log_index=3).claimed_tzs == 2_500
    assert mint_log_claims_mark(CHAIN) == {"marked": 0, "superseded": 0}


@pytest.mark.django_db
def test_a_history_of_several_steps_is_indexed_whole(indexed_chain, monkeypatch):
    chain = indexed_chain
    for amount in range(1, 13):
        chain.transact(chain.admin_key, chain.contract.functions.mint(HOLDER, amount))
    monkeypatch.setattr(indexer, "BLOCKS_PER_WRITE", 3)  # a dozen blocks: several steps

    counts = index_chain_run()

    head = counts["safe_block"]
    assert counts["transfers"]["cursor"] == head
    amounts = sorted(
        int(units)
        for units in ChainTransfer.objects.filter(
            chain_id=settings.CHAIN_ID, kind="mint"
        ).values_list("amount_units", flat=True)
    )
    assert amounts == list(range(1, 13))


@pytest.mark.django_db
def test_a_read_failing_in_a_later_step_keeps_the_steps_before_it(indexed_chain, monkeypatch):
    chain = indexed_chain
    blocks = [
        chain.transact(chain.admin_key, chain.contract.functions.mint(HOLDER, amount))[
            "blockNumber"
        ]
        for amount in range(1, 13)
    ]
    monkeypatch.setattr(indexer, "BLOCKS_PER_WRITE", 3)
    first = chain.deploy_block
    # the first block of the step holding the seventh mint: earlier steps hold mints too
    failing_from = first + 3 * ((blocks[6] - first) // 3)
    real_read = NtzsClient.logs_read

    def read(self, *, topics, from_block, to_block=None, raw=False):
        if from_block >= failing_from:
            raise ChainUnavailable("The node went away (test).")
        return real_read(self, topics=topics, from_block=from_block, to_block=to_block, raw=raw)

    monkeypatch.setattr(NtzsClient, "logs_read", read)

    outcome = index_chain_run()

    assert outcome["delayed"] == 1
    cursor = IndexerCursor.objects.get(name="transfers")
    assert cursor.block_number == failing_from - 1
    stored = ChainTransfer.objects.filter(kind="mint").values_list("block_number", flat=True)
    assert stored and max(stored) <= failing_from - 1
    assert len(stored) == sum(block < failing_from for block in blocks)
