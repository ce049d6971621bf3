"""The chain indexer on anvil (DESIGN §8, issue 14 point 2): its rows equal the chain's
Transfer and role logs, a reorg leaves them equal to the canonical chain, two runs at once
write no row twice, and a run with the RPC down changes nothing."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from web3 import Web3

from minting.breaker import rpc_breaker
from minting.chain import ROLE_GRANTED_TOPIC, ROLE_REVOKED_TOPIC, TRANSFER_TOPIC, role_id
from reconciliation.models import ChainTransfer, IndexerCursor, TokenRoleEvent
from reconciliation.services.matching import index_chain_run
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

UNITS = 10**18
ZERO = "0x" + "00" * 20
HOLDER, HOLDER_KEY = DEV_ADDRESSES[3], DEV_PRIVATE_KEYS[3]
OTHER = DEV_ADDRESSES[4]


@pytest.fixture
def indexed_chain(chain_settings, settings):
    """Django on the session's anvil, indexing from the token's deploy block with one
    confirmation; the admin key holds MINTER_ROLE (outside the system). Breaker reset."""
    settings.MINT_CONFIRMATIONS = 1
    settings.NTZS_DEPLOY_BLOCK = chain_settings.deploy_block
    chain_settings.transact(
        chain_settings.admin_key,
        chain_settings.contract.functions.grantRole(
            role_id("MINTER_ROLE"), chain_settings.admin_address
        ),
    )
    rpc_breaker().reset()
    yield chain_settings
    rpc_breaker().reset()


def mint(chain, to: str, tzs: int):
    return chain.transact(chain.admin_key, chain.contract.functions.mint(to, tzs * UNITS))


def chain_logs(chain, topics) -> set[tuple]:
    logs = chain.w3.eth.get_logs(
        {
            "address": chain.address,
            "fromBlock": chain.deploy_block,
            "toBlock": "latest",
            "topics": topics,
        }
    )
    return {
        (
            "0x" + bytes(log["transactionHash"]).hex(),
            log["logIndex"],
            log["blockNumber"],
            "0x" + bytes(log["blockHash"]).hex(),
        )
        for log in logs
    }


def chain_transfers(chain) -> set[tuple]:
    return chain_logs(chain, ["0x" + TRANSFER_TOPIC.hex()])


def chain_role_events(chain) -> set[tuple]:
    return chain_logs(chain, [["0x" + ROLE_GRANTED_TOPIC.hex(), "0x" + ROLE_REVOKED_TOPIC.hex()]])


def stored(model) -> set[tuple]:
    return set(model.objects.values_list("tx_hash", "log_index", "block_number", "block_hash"))


def assert_index_equals_chain(chain) -> None:
    assert stored(ChainTransfer) == chain_transfers(chain)
    assert stored(TokenRoleEvent) == chain_role_events(chain)
    head = chain.w3.eth.block_number
    for name in ("transfers", "roles"):
        cursor = IndexerCursor.objects.get(name=name)
        assert cursor.block_number == head
        assert cursor.block_hash == "0x" + bytes(chain.w3.eth.get_block(head)["hash"]).hex()


@pytest.mark.django_db
def test_the_rows_equal_the_chains_mints_burns_transfers_and_role_events(indexed_chain):
    chain = indexed_chain
    admin = chain.admin_address
    mint(chain, admin, 5_000)
    chain.transact(chain.admin_key, chain.contract.functions.transfer(HOLDER, 1_500 * UNITS))
    chain.transact(HOLDER_KEY, chain.contract.functions.transfer(OTHER, 500 * UNITS))
    chain.transact(chain.admin_key, chain.contract.functions.burn(admin, 1_000 * UNITS))
    chain.transact(
        chain.admin_key, chain.contract.functions.revokeRole(role_id("PAUSER_ROLE"), admin)
    )

    result = index_chain_run()

    assert result["transfers"]["outcome"] == "indexed", result
    assert_index_equals_chain(chain)
    kinds = {
        (row.kind, Web3.to_checksum_address(row.from_address), row.to_address, row.amount_units)
        for row in ChainTransfer.objects.all()
    }
    assert kinds == {
        ("mint", ZERO, admin, 5_000 * UNITS),
        ("transfer", admin, HOLDER, 1_500 * UNITS),
        ("transfer", HOLDER, OTHER, 500 * UNITS),
        ("burn", admin, ZERO, 1_000 * UNITS),
    }
    revoked = TokenRoleEvent.objects.get(kind="revoked")
    assert (revoked.role, revoked.account, revoked.sender) == (
        "0x" + role_id("PAUSER_ROLE").hex(),
        admin,
        admin,
    )
    # the deploy script's grants and this test's MINTER_ROLE grant
    assert TokenRoleEvent.objects.filter(
        kind="granted", account=admin, role="0x" + role_id("MINTER_ROLE").hex()
    ).exists()
    # a second run changes nothing
    assert index_chain_run()["transfers"] == {
        "outcome": "indexed",
        "added": 0,
        "removed": 0,
        "cursor": chain.w3.eth.block_number,
    }
    assert_index_equals_chain(chain)


@pytest.mark.django_db
def test_a_reorg_leaves_the_rows_equal_to_the_canonical_chain(indexed_chain, anvil_node):
    chain = indexed_chain
    mint(chain, HOLDER, 1_000)
    index_chain_run()
    fork = anvil_node.snapshot()
    lost = mint(chain, HOLDER, 2_000)
    chain.transact(
        chain.admin_key, chain.contract.functions.grantRole(role_id("PAUSER_ROLE"), OTHER)
    )
    index_chain_run()
    assert ChainTransfer.objects.filter(amount_units=2_000 * UNITS).exists()
    assert TokenRoleEvent.objects.filter(account=OTHER).exists()
    lost_block = lost["blockNumber"]

    anvil_node.revert(fork)  # the branch the indexer saw is gone
    anvil_node.rpc("evm_mine")  # a different block where the lost mint was
    won = mint(chain, OTHER, 3_000)
    anvil_node.rpc("anvil_mine", hex(3))
    assert chain.w3.eth.block_number > lost_block + 1

    result = index_chain_run()

    assert result["transfers"]["removed"] == 1, result
    assert result["roles"]["removed"] == 1, result
    assert_index_equals_chain(chain)
    assert not ChainTransfer.objects.filter(amount_units=2_000 * UNITS).exists()
    assert not TokenRoleEvent.objects.filter(account=OTHER).exists()
    row = ChainTransfer.objects.get(amount_units=3_000 * UNITS)
    assert (row.block_number, row.to_address) == (won["blockNumber"], OTHER)


@pytest.mark.django_db
def test_a_reorg_deeper_than_the_window_is_found_from_the_cursors_hash(
    indexed_chain, anvil_node, monkeypatch
):
    """With a window of 1 block, only the cursor's changed hash tells the reorg: the stored
    rows are walked down to the last canonical one and everything above is read again."""
    monkeypatch.setattr("reconciliation.services.indexer.REORG_WINDOW", 1)
    chain = indexed_chain
    mint(chain, HOLDER, 1_000)
    index_chain_run()
    fork = anvil_node.snapshot()
    mint(chain, HOLDER, 2_000)
    anvil_node.rpc("anvil_mine", hex(4))
    index_chain_run()
    anvil_node.revert(fork)
    mint(chain, OTHER, 3_000)
    anvil_node.rpc("anvil_mine", hex(6))

    index_chain_run()

    assert_index_equals_chain(chain)
    assert set(ChainTransfer.objects.values_list("amount_units", flat=True)) == {
        1_000 * UNITS,
        3_000 * UNITS,
    }


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_write_no_row_twice(indexed_chain):
    chain = indexed_chain
    for amount in (100, 200, 300):
        mint(chain, HOLDER, amount)
    chain.transact(HOLDER_KEY, chain.contract.functions.transfer(OTHER, 50 * UNITS))
    results: list[dict] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            results.append(index_chain_run())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 2, results
    assert ChainTransfer.objects.count() == len(chain_transfers(chain)) == 4
    assert TokenRoleEvent.objects.count() == len(chain_role_events(chain))
    assert_index_equals_chain(chain)
    # at most one run wrote each stream's range; a loser says so
    outcomes = sorted(r["transfers"]["outcome"] for r in results)
    assert outcomes in (["indexed", "raced"], ["indexed", "indexed"])
    assert sum(r["transfers"]["added"] for r in results) == 4


@pytest.mark.django_db
def test_with_the_rpc_down_the_run_fails_cleanly_and_the_cursor_stays(indexed_chain, settings):
    chain = indexed_chain
    mint(chain, HOLDER, 1_000)
    index_chain_run()
    before = (
        list(IndexerCursor.objects.order_by("name").values()),
        stored(ChainTransfer),
        stored(TokenRoleEvent),
    )
    mint(chain, HOLDER, 2_000)  # something new the run cannot see
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"  # nothing listens there

    result = index_chain_run()

    assert result["delayed"] == 1 and "127.0.0.1" in result["reason"], result
    with pytest.raises(CommandError, match="The chain was not indexed"):
        call_command("index_chain")
    after = (
        list(IndexerCursor.objects.order_by("name").values()),
        stored(ChainTransfer),
        stored(TokenRoleEvent),
    )
    assert after == before

    settings.BASE_SEPOLIA_RPC_URL = chain.url
    rpc_breaker().reset()
    index_chain_run()
    assert_index_equals_chain(chain)


@pytest.mark.django_db
def test_from_block_reads_the_history_again(indexed_chain):
    chain = indexed_chain
    mint(chain, HOLDER, 1_000)
    index_chain_run()
    ChainTransfer.objects.all().delete()  # rows lost (a restore, a bug)

    call_command("index_chain", "--from-block", str(chain.deploy_block))

    assert_index_equals_chain(chain)
    assert IndexerCursor.objects.get(name="transfers").first_block == chain.deploy_block


@pytest.mark.django_db
def test_total_supply_is_read_at_a_block_and_now(indexed_chain):
    from minting.rpc import mint_client

    chain = indexed_chain
    first = mint(chain, HOLDER, 1_000)["blockNumber"]
    mint(chain, HOLDER, 2_000)
    client = mint_client()
    assert client.total_supply(block=first - 1) == 0
    assert client.total_supply(block=first) == 1_000 * UNITS
    assert client.total_supply() == 3_000 * UNITS
    assert client.block_hash(first) == "0x" + bytes(chain.w3.eth.get_block(first)["hash"]).hex()
    assert client.block_hash(chain.w3.eth.block_number + 100) is None
