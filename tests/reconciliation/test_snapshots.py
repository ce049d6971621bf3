"""Supply snapshots on anvil (DESIGN §8, issue 14 point 5): the equation at a block, a
discrepancy alerting only when it survives two snapshots (once per change, resolved when it
clears), in-flight mints apart, an unreadable chain stored as unavailable (never 0), and
``manage.py reconcile`` exiting non-zero when the equation does not hold."""

# ruff: noqa: F811 - pytest fixtures imported from other test packages are parameters here
from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.models import Alert
from core.services import dual_control_approve
from minting.breaker import rpc_breaker
from minting.chain import role_id
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from reconciliation.models import IndexerCursor, SupplySnapshot
from reconciliation.services.entries import reconciliation_entry_request
from reconciliation.services.matching import index_chain_run
from reconciliation.services.snapshots import (
    INDEXER_MAX_LAG_BLOCKS,
    SUPPLY_ALERT,
    supply_snapshot_take,
)
from tests.deposits.conftest import (  # noqa: F401 - shared personas and banks
    amina,
    baraka,
    compliance,
    compliance_two,
    settlement_bank,
    superadmin,
)
from tests.factories import super_admin
from tests.minting.conftest import minting, paid_deposit  # noqa: F401 - shared fixtures
from tests.support.anvil import DEV_ADDRESSES
from tests.support.base_proxy import BaseProxy

UNITS = 10**18
OUTSIDER = DEV_ADDRESSES[5]


@pytest.fixture
def indexing(minting, settings):  # noqa: F811 - the imported fixture
    """The minting set-up, indexed from the token's deploy block, the admin key holding
    MINTER_ROLE (its mints are outside the system); breaker reset."""
    settings.NTZS_DEPLOY_BLOCK = minting.deploy_block
    settings.TREASURY_ADDRESSES = []
    minting.transact(
        minting.admin_key,
        minting.contract.functions.grantRole(role_id("MINTER_ROLE"), minting.admin_address),
    )
    rpc_breaker().reset()
    yield minting
    rpc_breaker().reset()


@pytest.fixture
def two_super_admins(db):
    return super_admin(email="maker@ntzs.test"), super_admin(email="checker@ntzs.test")


def worker_mint(paid_deposit, tzs: int):  # noqa: F811 - the fixture, passed in
    deposit = paid_deposit(tzs)
    assert mint_jobs_process(client_factory=mint_client).signed == 1
    mints_confirm(client_factory=mint_client)
    deposit.refresh_from_db()
    assert deposit.status == "minted"
    return deposit


def direct_mint(chain, to: str, units: int) -> tuple[str, int]:
    receipt = chain.transact(chain.admin_key, chain.contract.functions.mint(to, units))
    return "0x" + bytes(receipt["transactionHash"]).hex(), receipt["logs"][0]["logIndex"]


def entry_by_two(maker, checker, **fields):
    request = reconciliation_entry_request(maker=maker, **fields)
    dual_control_approve(request_id=request.pk, checker=checker)


def discrepancy_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and r.getMessage().startswith("Supply discrepancy")
    ]


@pytest.mark.django_db
def test_claimed_worker_mints_balance_at_the_indexed_block(indexing, paid_deposit):
    worker_mint(paid_deposit, 5_000)
    worker_mint(paid_deposit, 7_000)
    index_chain_run()

    snapshot = supply_snapshot_take()

    cursor = IndexerCursor.objects.get(name="transfers")
    assert snapshot.block_number == cursor.block_number
    assert snapshot.onchain_supply_units == 12_000 * UNITS
    assert (snapshot.db_minted_tzs, snapshot.deposits_minted_tzs) == (12_000, 12_000)
    assert (snapshot.reconciled_units, snapshot.in_flight_tzs) == (0, 0)
    assert snapshot.discrepancy_units == 0 and snapshot.unavailable_reason == ""
    assert snapshot.treasury_units == 0


@pytest.mark.django_db
def test_a_mint_outside_the_system_alerts_on_the_second_snapshot_and_a_test_mint_entry_clears_it(
    indexing, paid_deposit, two_super_admins, caplog
):
    maker, checker = two_super_admins
    worker_mint(paid_deposit, 5_000)
    tx_hash, log_index = direct_mint(indexing, OUTSIDER, 777 * UNITS)
    index_chain_run()

    with caplog.at_level(logging.ERROR):
        first = supply_snapshot_take()
    assert first.discrepancy_units == 777 * UNITS
    assert not Alert.objects.filter(kind=SUPPLY_ALERT).exists()  # one snapshot: no alert
    assert discrepancy_lines(caplog) == []

    with caplog.at_level(logging.ERROR):
        supply_snapshot_take()
        supply_snapshot_take()  # the same discrepancy again: no second line
    alert = Alert.objects.get(kind=SUPPLY_ALERT)
    assert alert.resolved_at is None and f"discrepancy {777 * UNITS} " in alert.detail
    assert len(discrepancy_lines(caplog)) == 1
    assert f"discrepancy_units={777 * UNITS}" in discrepancy_lines(caplog)[0]

    entry_by_two(
        maker,
        checker,
        entry_type="test_mint",
        amount_units=777 * UNITS,
        reason="a test mint with the admin key",
        tx_hash=tx_hash,
        log_index=log_index,
    )
    assert supply_snapshot_take().discrepancy_units == 0
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert supply_snapshot_take().discrepancy_units == 0
    assert Alert.objects.filter(kind=SUPPLY_ALERT, resolved_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_a_changed_discrepancy_logs_again_and_one_clean_snapshot_between_resets_the_count(
    indexing, paid_deposit, caplog
):
    worker_mint(paid_deposit, 1_000)
    direct_mint(indexing, OUTSIDER, 5 * UNITS)
    index_chain_run()
    with caplog.at_level(logging.ERROR):
        supply_snapshot_take()
        supply_snapshot_take()
        direct_mint(indexing, OUTSIDER, 1)
        index_chain_run()
        changed = supply_snapshot_take()
    assert changed.discrepancy_units == 5 * UNITS + 1
    assert len(discrepancy_lines(caplog)) == 2
    assert Alert.objects.filter(kind=SUPPLY_ALERT, resolved_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_a_worker_mint_short_of_its_confirmations_is_in_flight_not_a_discrepancy(
    indexing, paid_deposit, settings, anvil_node
):
    settings.MINT_CONFIRMATIONS = 3
    deposit = paid_deposit(5_000)
    assert mint_jobs_process(client_factory=mint_client).signed == 1
    anvil_node.rpc("anvil_mine", hex(2))  # indexed (3 confirmations), not yet claimed
    index_chain_run()

    snapshots = [supply_snapshot_take(), supply_snapshot_take()]

    deposit.refresh_from_db()
    assert deposit.status == "mint_processing"
    for snapshot in snapshots:
        assert snapshot.onchain_supply_units == 5_000 * UNITS
        assert (snapshot.db_minted_tzs, snapshot.in_flight_tzs) == (0, 5_000)
        assert snapshot.discrepancy_units == 0
    assert not Alert.objects.filter(kind=SUPPLY_ALERT).exists()


@pytest.mark.django_db
def test_a_wipe_of_a_holder_given_one_and_a_half_ntzs_is_balanced_by_a_negative_wipe_entry(
    indexing, two_super_admins
):
    maker, checker = two_super_admins
    chain = indexing
    tx_hash, log_index = direct_mint(chain, chain.admin_address, 10 * UNITS)
    entry_by_two(
        maker,
        checker,
        entry_type="test_mint",
        amount_units=10 * UNITS,
        reason="treasury float",
        tx_hash=tx_hash,
        log_index=log_index,
    )
    chain.transact(chain.admin_key, chain.contract.functions.transfer(OUTSIDER, 3 * UNITS // 2))
    chain.transact(chain.admin_key, chain.contract.functions.blacklist(OUTSIDER))
    wipe = chain.transact(chain.admin_key, chain.contract.functions.wipeBlacklisted(OUTSIDER))
    wipe_tx = "0x" + bytes(wipe["transactionHash"]).hex()
    wipe_log = next(log["logIndex"] for log in wipe["logs"] if log["address"] == chain.address)
    index_chain_run()
    assert supply_snapshot_take().discrepancy_units == -(3 * UNITS // 2)

    entry_by_two(
        maker,
        checker,
        entry_type="wipe",
        amount_units=-(3 * UNITS // 2),
        reason="wiped the blacklisted holder",
        tx_hash=wipe_tx,
        log_index=wipe_log,
    )
    snapshot = supply_snapshot_take()
    assert snapshot.onchain_supply_units == 10 * UNITS - 3 * UNITS // 2
    assert snapshot.reconciled_units == 10 * UNITS - 3 * UNITS // 2
    assert snapshot.discrepancy_units == 0


@pytest.mark.django_db
def test_an_unreadable_chain_is_stored_as_unavailable_never_zero(
    indexing, paid_deposit, settings, caplog
):
    worker_mint(paid_deposit, 2_000)
    direct_mint(indexing, OUTSIDER, UNITS)
    index_chain_run()
    supply_snapshot_take()
    supply_snapshot_take()
    assert Alert.objects.filter(kind=SUPPLY_ALERT, resolved_at__isnull=True).exists()

    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"  # nothing listens: the RPC is down
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    snapshot = supply_snapshot_take()

    snapshot.refresh_from_db()
    assert snapshot.onchain_supply_units is None and snapshot.discrepancy_units is None
    assert snapshot.block_number is None and snapshot.treasury_units is None
    assert snapshot.unavailable_reason
    assert snapshot.db_minted_tzs == 2_000  # the books are still shown
    # neither proven nor cleared: the open alert stays open
    assert Alert.objects.filter(kind=SUPPLY_ALERT, resolved_at__isnull=True).count() == 1
    assert SupplySnapshot.objects.filter(onchain_supply_units=0).count() == 0


@pytest.mark.django_db
def test_treasury_balances_are_read_at_the_snapshot_block(indexing, settings, two_super_admins):
    maker, checker = two_super_admins
    settings.TREASURY_ADDRESSES = [OUTSIDER.lower(), DEV_ADDRESSES[6]]
    for to, units in ((OUTSIDER, 4 * UNITS), (DEV_ADDRESSES[6], 1), (DEV_ADDRESSES[7], UNITS)):
        tx_hash, log_index = direct_mint(indexing, to, units)
        entry_by_two(
            maker,
            checker,
            entry_type="test_mint",
            amount_units=units,
            reason="float",
            tx_hash=tx_hash,
            log_index=log_index,
        )
    index_chain_run()
    snapshot = supply_snapshot_take()
    assert snapshot.treasury_units == 4 * UNITS + 1
    assert snapshot.discrepancy_units == 0


@pytest.mark.django_db
def test_reconcile_prints_the_equation_and_exits_non_zero_when_it_does_not_hold(
    indexing, paid_deposit, settings, capsys
):
    worker_mint(paid_deposit, 3_000)
    index_chain_run()
    call_command("reconcile")
    out = capsys.readouterr().out
    assert "On-chain supply == DB minted + reconciled + in flight holds" in out
    assert f"On-chain supply        {3_000 * UNITS} base units" in out

    direct_mint(indexing, OUTSIDER, 2 * UNITS)
    index_chain_run()
    with pytest.raises(CommandError, match=f"Supply discrepancy of {2 * UNITS} base units"):
        call_command("reconcile")
    assert f"is off by {2 * UNITS} base units" in capsys.readouterr().out

    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match="could not be read"):
        call_command("reconcile")


class PrunedNode(BaseProxy):
    """A node that keeps only the latest state (as many providers do): an eth_call at a
    numbered block is refused the way geth refuses it."""

    def _intercept(self, item, context):
        params = item.get("params") or []
        if item.get("method") == "eth_call" and len(params) > 1:
            tag = params[1]
            if isinstance(tag, str) and tag.startswith("0x"):
                return self._refuse(
                    "pruned", item.get("id"), -32000, "missing trie node 1a2b (path ) <nil>"
                )
        return super()._intercept(item, context)


@pytest.mark.django_db
def test_a_pruned_node_refusing_the_block_stores_unavailable_not_zero(
    indexing, paid_deposit, settings, anvil_node
):
    worker_mint(paid_deposit, 4_000)
    index_chain_run()
    proxy = PrunedNode(anvil_node.url)
    try:
        settings.BASE_SEPOLIA_RPC_URL = proxy.url
        snapshot = supply_snapshot_take()
    finally:
        proxy.stop()
    assert proxy.refusals["pruned"] >= 1
    assert snapshot.onchain_supply_units is None and snapshot.discrepancy_units is None
    assert "could not be read" in snapshot.unavailable_reason
    assert snapshot.db_minted_tzs == 4_000


@pytest.mark.django_db
def test_a_treasury_value_that_is_no_address_leaves_only_circulating_unknown(
    indexing, paid_deposit, settings
):
    worker_mint(paid_deposit, 1_500)
    index_chain_run()
    settings.TREASURY_ADDRESSES = ["0xnot-an-address"]
    snapshot = supply_snapshot_take()
    assert snapshot.onchain_supply_units == 1_500 * UNITS and snapshot.discrepancy_units == 0
    assert snapshot.treasury_units is None
    assert "'0xnot-an-address', which is not an address" in snapshot.unavailable_reason


@pytest.mark.django_db
def test_a_stalled_indexer_makes_the_snapshot_unavailable_not_an_old_figure(
    indexing, paid_deposit, settings
):
    worker_mint(paid_deposit, 2_000)
    index_chain_run()
    fresh = supply_snapshot_take()
    assert fresh.onchain_supply_units is not None

    # The indexer stops (the breaker open, a lagging node) while the chain goes on.
    indexing.w3.provider.make_request("anvil_mine", [hex(INDEXER_MAX_LAG_BLOCKS + 10)])
    stale = supply_snapshot_take()

    stale.refresh_from_db()
    assert stale.onchain_supply_units is None and stale.discrepancy_units is None
    assert "indexer is" in stale.unavailable_reason and "blocks behind" in stale.unavailable_reason
