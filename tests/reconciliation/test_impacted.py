"""Impacted addresses on the local chain (issue 15 point 2): after a suspicious mint to A,
A sends to B, B to C and D, C to E; the real indexer reads the chain, and the selectors follow
the money — two hops list A→B, then B→C and B→D, not C→E — each row equal to the log the
chain holds. An address's transfers page newest first; its live state is read from the
token, and an unreadable chain gives a sentence instead of figures."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deposits.models import Bank, DepositRequest
from minting.breaker import rpc_breaker
from minting.chain import ZERO_ADDRESS, role_id
from reconciliation.selectors import (
    ImpactQueryError,
    address_chain_states,
    address_links,
    address_transfers,
    impact_address_normalise,
    transaction_impact,
)
from reconciliation.services.matching import index_chain_run
from tests.factories import WalletFactory, customer
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS, free_loopback_port

pytestmark = pytest.mark.django_db

UNITS = 10**18
A, B, C, D, E, X = DEV_ADDRESSES[3:9]
A_KEY, B_KEY, C_KEY = DEV_PRIVATE_KEYS[3:6]


@pytest.fixture
def indexed_chain(chain_settings, settings):
    """Django on the session's anvil, indexing from the token's deploy block with one
    confirmation; the admin key holds MINTER_ROLE (a mint outside the system)."""
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


def _logs(chain, receipt) -> list[tuple]:
    """The receipt's Transfer logs as the chain holds them: (tx, log index, from, to, units)."""
    return [
        (
            "0x" + bytes(event["transactionHash"]).hex(),
            event["logIndex"],
            event["args"]["from"],
            event["args"]["to"],
            event["args"]["value"],
        )
        for event in chain.contract.events.Transfer().process_receipt(receipt)
    ]


def _rows(rows) -> list[tuple]:
    return [
        (r.tx_hash, r.log_index, r.from_address, r.to_address, int(r.amount_units)) for r in rows
    ]


def _send(chain, key, to, tzs):
    return chain.transact(key, chain.contract.functions.transfer(to, tzs * UNITS))


@pytest.fixture
def money_trail(indexed_chain):
    """A held 10 nTZS and sent 4 to X before; then the suspicious mint of 1,000 to A, A→B
    900, B→C 300 and B→D 200, C→E 100; indexed once."""
    chain = indexed_chain
    mint = chain.contract.functions.mint
    trail = {"before": []}
    trail["before"] += _logs(chain, chain.transact(chain.admin_key, mint(A, 10 * UNITS)))
    trail["before"] += _logs(chain, _send(chain, A_KEY, X, 4))
    trail["mint"] = _logs(chain, chain.transact(chain.admin_key, mint(A, 1_000 * UNITS)))
    trail["a_b"] = _logs(chain, _send(chain, A_KEY, B, 900))
    trail["b_c"] = _logs(chain, _send(chain, B_KEY, C, 300))
    trail["b_d"] = _logs(chain, _send(chain, B_KEY, D, 200))
    trail["c_e"] = _logs(chain, _send(chain, C_KEY, E, 100))
    result = index_chain_run()
    assert result["transfers"]["outcome"] == "indexed", result
    trail["chain"] = chain
    return trail


def test_two_hops_from_a_suspicious_mint_list_a_to_b_then_b_to_c_and_d_not_c_to_e(money_trail):
    mint_tx = money_trail["mint"][0][0]

    impact = transaction_impact(tx_hash=mint_tx)  # the default: two hops

    assert _rows(impact.transfers) == money_trail["mint"]
    assert money_trail["mint"][0][2:] == (ZERO_ADDRESS, A, 1_000 * UNITS)
    assert [hop.number for hop in impact.hops] == [1, 2]
    first, second = impact.hops
    # A's transfer to X came before the mint: not onward of it
    assert _rows(first.rows) == money_trail["a_b"]
    assert (first.followed, first.capped) == ([A], False)
    assert _rows(second.rows) == money_trail["b_c"] + money_trail["b_d"]
    assert (second.followed, second.capped) == ([B], False)
    listed = {row[:2] for hop in impact.hops for row in _rows(hop.rows)}
    assert money_trail["c_e"][0][:2] not in listed
    assert impact.addresses == [A, B, C, D]


def test_a_third_hop_reaches_c_to_e_and_stops_where_nothing_moved_on(money_trail):
    impact = transaction_impact(tx_hash=money_trail["mint"][0][0], hops=3)

    assert [_rows(hop.rows) for hop in impact.hops] == [
        money_trail["a_b"],
        money_trail["b_c"] + money_trail["b_d"],
        money_trail["c_e"],
    ]
    assert impact.hops[2].followed == [C, D]
    assert impact.addresses == [A, B, C, D, E]
    # E sent nothing: hop 4 follows E and lists nothing, and there is no hop 5
    assert len(transaction_impact(tx_hash=money_trail["mint"][0][0], hops=5).hops) == 4


def test_hops_are_bounded_to_five_and_at_least_one(money_trail):
    mint_tx = money_trail["mint"][0][0]
    assert len(transaction_impact(tx_hash=mint_tx, hops=0).hops) == 1
    capped = transaction_impact(tx_hash=mint_tx, hops=50)
    assert [hop.number for hop in capped.hops] == [1, 2, 3, 4]  # E's empty hop 5 is not shown


def test_a_hop_over_its_row_cap_says_so_and_the_next_follows_only_the_rows_shown(money_trail):
    impact = transaction_impact(tx_hash=money_trail["mint"][0][0], hops=3, per_hop=1)

    hop2 = impact.hops[1]
    assert hop2.capped is True
    assert _rows(hop2.rows) == money_trail["b_c"]  # the earliest one
    assert impact.hops[2].followed == [C]
    assert _rows(impact.hops[2].rows) == money_trail["c_e"]
    assert D not in impact.addresses


def test_a_plain_transfer_is_followed_from_its_recipient(money_trail):
    impact = transaction_impact(tx_hash=money_trail["b_c"][0][0], hops=1)

    assert _rows(impact.transfers) == money_trail["b_c"]
    assert impact.addresses[:2] == [B, C]
    assert [_rows(hop.rows) for hop in impact.hops] == [money_trail["c_e"]]


def test_an_address_lists_its_transfers_in_and_out_newest_first_a_page_at_a_time(money_trail):
    every = address_transfers(address=B.lower())

    assert every.address == B
    assert _rows(every.rows) == money_trail["b_d"] + money_trail["b_c"] + money_trail["a_b"]
    assert every.older is None

    first = address_transfers(address=B, limit=2)
    assert _rows(first.rows) == money_trail["b_d"] + money_trail["b_c"]
    assert first.older is not None
    second = address_transfers(address=B, limit=2, before=first.older)
    assert _rows(second.rows) == money_trail["a_b"]
    assert second.older is None
    # A: both mints in, the transfers out, newest first
    assert _rows(address_transfers(address=A).rows) == (
        money_trail["a_b"] + money_trail["mint"] + money_trail["before"][::-1]
    )


def test_a_transfer_to_oneself_is_listed_once(money_trail):
    chain = money_trail["chain"]
    self_send = _logs(chain, _send(chain, C_KEY, C, 1))
    index_chain_run()

    rows = _rows(address_transfers(address=C).rows)

    assert rows[0] == self_send[0]
    assert rows.count(self_send[0]) == 1


def test_the_live_state_is_read_from_the_token(money_trail):
    chain = money_trail["chain"]
    chain.transact(chain.admin_key, chain.contract.functions.blacklist(C))
    chain.transact(chain.admin_key, chain.contract.functions.freeze(D))

    states = address_chain_states([A, B, C, D])

    for address in (A, B, C, D):
        assert states[address].balance_units == chain.contract.functions.balanceOf(address).call()
        assert states[address].unavailable == ""
    assert states[B].balance_units == 400 * UNITS
    assert (states[C].frozen, states[C].blacklisted) == (False, True)
    assert (states[D].frozen, states[D].blacklisted) == (True, False)
    assert (states[A].frozen, states[A].blacklisted) == (False, False)


def test_only_the_first_addresses_are_read_live(money_trail):
    assert list(address_chain_states([A, B, C, D], limit=2)) == [A, B]


def test_an_unreadable_chain_gives_a_sentence_not_figures(chain_settings, settings):
    settings.BASE_SEPOLIA_RPC_URL = f"http://127.0.0.1:{free_loopback_port()}"
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""

    state = address_chain_states([A])[A]

    assert state.unavailable.startswith("The chain could not be read")
    assert (state.balance_units, state.frozen, state.blacklisted) == (None, None, None)


def test_an_address_shows_the_customers_whose_wallet_it_is_and_the_deposits_to_it(db):
    amina = customer()
    wallet = WalletFactory(user=amina, verified=True)
    other = WalletFactory(user=customer(email="juma@ntzs.test"), key_name="juma-unverified")
    bank = Bank.objects.create(name="CRDB", is_zenopay_settlement=True)
    deposits = [
        DepositRequest.objects.create(
            user=amina,
            bank=bank,
            wallet=wallet,
            chain="base",
            amount_tzs=amount,
            payment_provider="zenopay",
            buyer_phone="+255712345678",
            status="minted",
        )
        for amount in (5_000, 7_000, 9_000)
    ]
    DepositRequest.objects.create(
        user=other.user,
        bank=bank,
        wallet=other,
        chain="base",
        amount_tzs=1_000,
        payment_provider="zenopay",
        buyer_phone="+255712345678",
    )

    links = address_links(address=wallet.address.lower(), limit=2)

    assert [w.user for w in links.wallets] == [amina]
    assert [d.pk for d in links.deposits] == [deposits[2].pk, deposits[1].pk]
    assert links.deposits_more is True
    assert address_links(address=wallet.address).deposits_more is False


@pytest.mark.parametrize("value", ["", "0x123", "not an address", ZERO_ADDRESS])
def test_a_value_that_is_no_address_is_refused_with_a_sentence(value):
    with pytest.raises(ImpactQueryError):
        impact_address_normalise(value)


def test_the_transfer_reads_use_the_address_indexes(money_trail):
    """A busy address must not make the page scan the table: each of the selector's reads is
    a range of the from or the to address index (the planner told to avoid sequential scans,
    as it would on a large table)."""
    first = address_transfers(address=B, limit=1)
    with CaptureQueriesContext(connection) as reads:
        address_transfers(address=B, limit=1, before=first.older)
    assert len(reads.captured_queries) == 2
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for read in reads.captured_queries:
                cursor.execute("EXPLAIN " + read["sql"])
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        finally:
            cursor.execute("SET enable_seqscan = on")
    assert "chain_transfer_from" in plans[0]
    assert "chain_transfer_to" in plans[1]
