"""The indexer's bulk path (issue 14's benchmark fixes): logs read as the node sends them and
rows written in one statement per 10,000 keep every figure exact — a uint256 amount to the
last base unit, the same logs as web3's formatted read — and a second run adds nothing."""

# ruff: noqa: F811 - tests take the imported fixtures as arguments
from __future__ import annotations

import pytest
from django.conf import settings

from minting.chain import TRANSFER_TOPIC, hex_str
from minting.services.runner import mint_client
from reconciliation.models import ChainTransfer
from reconciliation.services.matching import index_chain_run
from tests.reconciliation.test_indexer import HOLDER, indexed_chain  # noqa: F401 - fixture

HUGE_UNITS = 2**200 + 12_345  # far past float and bigint: only exact numeric keeps it


@pytest.mark.django_db
def test_a_uint256_mint_is_stored_to_the_last_base_unit(indexed_chain):
    chain = indexed_chain
    chain.transact(chain.admin_key, chain.contract.functions.mint(HOLDER, HUGE_UNITS))

    index_chain_run()

    row = ChainTransfer.objects.get(kind="mint", to_address=HOLDER)
    assert int(row.amount_units) == HUGE_UNITS
    assert row.from_address == "0x" + "00" * 20
    assert row.indexed_at is not None


@pytest.mark.django_db
def test_the_raw_read_returns_the_logs_web3_formats(indexed_chain):
    chain = indexed_chain
    for amount in (1, 2, 3):
        chain.transact(chain.admin_key, chain.contract.functions.mint(HOLDER, amount))
    client = mint_client()
    topics = [hex_str(TRANSFER_TOPIC)]
    head = chain.w3.eth.block_number

    raw = client.logs_read(topics=topics, from_block=chain.deploy_block, to_block=head, raw=True)
    formatted = client.logs_read(topics=topics, from_block=chain.deploy_block, to_block=head)

    def key(log):
        return (
            hex_str(log["transactionHash"]),
            int(log["logIndex"], 16) if isinstance(log["logIndex"], str) else log["logIndex"],
            hex_str(log["blockHash"]),
            tuple(hex_str(topic) for topic in log["topics"]),
            hex_str(log["data"]),
        )

    assert len(raw) == 3
    assert [key(log) for log in raw] == [key(log) for log in formatted]


@pytest.mark.django_db
def test_a_second_run_over_the_same_blocks_adds_no_row(indexed_chain):
    chain = indexed_chain
    chain.transact(chain.admin_key, chain.contract.functions.mint(HOLDER, 7))
    first = index_chain_run()

    again = index_chain_run(from_block=chain.deploy_block)

    assert first["transfers"]["added"] == 1
    assert again["transfers"]["added"] == 0 and again["transfers"]["removed"] == 0
    assert ChainTransfer.objects.filter(chain_id=settings.CHAIN_ID).count() == 1
