"""A wipe explains itself in the books (issue 15 point 1, "Done when": blacklist → wipe → the
`wipe` entry exists once the log is indexed, the next snapshot balances): the indexer's
matching records one negative `wipe` entry on the wipe's burn log, made by the request's
maker and approved by its checker, through the operator key or the Safe; a re-run records
nothing more, and a burn no approved wipe request caused stays unexplained."""

from __future__ import annotations

import pytest

from core.models import AdminAction
from minting.chain import role_id
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from minting.services.token_admin import (
    token_admin_approve,
    token_admin_execute,
    token_blacklist,
    token_wipe,
)
from reconciliation.models import ReconciliationEntry
from reconciliation.selectors import unexplained_burns
from reconciliation.services.matching import index_chain_run, wipe_entries_record
from reconciliation.services.snapshots import supply_snapshot_take
from tests.factories import super_admin
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

OPERATOR_KEY, OPERATOR = DEV_PRIVATE_KEYS[7], DEV_ADDRESSES[7]
UNITS = 10**18
ADMIN_ROLES = ("BLACKLISTER_ROLE", "WIPER_ROLE")


@pytest.fixture
def superadmin_two(db):
    return super_admin(email="super2@ntzs.test", full_name="Zawadi Mrisho")


def grant_roles(chain, account: str, roles=ADMIN_ROLES) -> None:
    for role in roles:
        chain.transact(chain.admin_key, chain.contract.functions.grantRole(role_id(role), account))


@pytest.fixture
def indexing(minting, settings):
    settings.NTZS_DEPLOY_BLOCK = minting.deploy_block
    settings.TREASURY_ADDRESSES = []
    return minting


def minted_deposit(paid_deposit, tzs: int):
    deposit = paid_deposit(tzs)
    assert mint_jobs_process(client_factory=mint_client).signed == 1
    mints_confirm(client_factory=mint_client)
    deposit.refresh_from_db()
    assert deposit.status == "minted"
    return deposit


def operator_run(result, callbacks) -> str:
    assert result.lane == "operator" and len(callbacks) == 1
    return token_admin_execute(action_id=result.action_id)


@pytest.mark.django_db
def test_an_operator_wipe_gets_its_entry_once_indexed_and_the_snapshot_balances(
    indexing,
    paid_deposit,
    amina,
    superadmin,
    superadmin_two,
    settings,
    django_capture_on_commit_callbacks,
):
    chain = indexing
    grant_roles(chain, OPERATOR)
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    minted_deposit(paid_deposit, 5_000)
    wallet = amina.test_wallet.address
    index_chain_run()
    assert supply_snapshot_take().discrepancy_units == 0
    capture = django_capture_on_commit_callbacks

    with capture() as callbacks:
        blacklist = token_blacklist(address=wallet, actor=superadmin, reason="fraud")
    assert operator_run(blacklist, callbacks) == "done"
    request = token_wipe(address=wallet, actor=superadmin, reason="court order 12")
    with capture() as callbacks:
        wipe = token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    assert operator_run(wipe, callbacks) == "done"
    assert chain.contract.functions.balanceOf(wallet).call() == 0
    wipe_tx = AdminAction.objects.get(
        params__queued_action=str(wipe.action_id), outcome="done"
    ).params["tx_hash"]

    counts = index_chain_run()
    assert counts["matching"]["wipes_recorded"] == 1
    entry = ReconciliationEntry.objects.get()
    assert entry.entry_type == "wipe" and int(entry.amount_units) == -5_000 * UNITS
    assert entry.tx_hash == wipe_tx and entry.to_address == wallet
    assert (entry.created_by, entry.approved_by) == (superadmin, superadmin_two)
    assert entry.dual_control_request_id == request.request_id
    assert not unexplained_burns().exists()
    snapshot = supply_snapshot_take()
    assert snapshot.onchain_supply_units == 0
    assert int(snapshot.reconciled_units) == -5_000 * UNITS
    assert snapshot.discrepancy_units == 0

    # Re-running the indexer and the matching records nothing more.
    assert index_chain_run()["matching"]["wipes_recorded"] == 0
    assert wipe_entries_record(mint_client()) == 0
    assert ReconciliationEntry.objects.count() == 1


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
@pytest.mark.django_db
def test_a_safe_wipe_gets_its_entry_and_a_burn_no_request_caused_stays_unexplained(
    local_safe, indexing, paid_deposit, amina, superadmin, superadmin_two, settings
):
    chain = indexing
    grant_roles(chain, local_safe.address)
    settings.SAFE_ADDRESS = local_safe.address
    settings.OPERATOR_PRIVATE_KEY = ""
    minted_deposit(paid_deposit, 3_000)
    wallet = amina.test_wallet.address

    def safe_run(result) -> None:
        assert result.lane == "safe"
        (tx,) = result.batch["transactions"]
        tx_hash = local_safe.exec_call(tx["to"], bytes.fromhex(tx["data"][2:]))
        assert chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1

    safe_run(token_blacklist(address=wallet, actor=superadmin, reason="fraud"))
    # A wipe approved but not executed yet: indexing finds no burn, records nothing.
    request = token_wipe(address=wallet, actor=superadmin, reason="court order 12")
    wipe = token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    assert index_chain_run()["matching"]["wipes_recorded"] == 0
    safe_run(wipe)

    # A wipe by hand (no request) of another blacklisted holder: a burn nobody approved here.
    other = DEV_ADDRESSES[6]
    grant_roles(chain, chain.admin_address, ("BLACKLISTER_ROLE", "WIPER_ROLE", "MINTER_ROLE"))
    chain.transact(chain.admin_key, chain.contract.functions.mint(other, 4 * UNITS))
    chain.transact(chain.admin_key, chain.contract.functions.blacklist(other))
    chain.transact(chain.admin_key, chain.contract.functions.wipeBlacklisted(other))

    index_chain_run()
    entry = ReconciliationEntry.objects.get()
    assert entry.entry_type == "wipe" and int(entry.amount_units) == -3_000 * UNITS
    assert entry.to_address == wallet
    assert (entry.created_by, entry.approved_by) == (superadmin, superadmin_two)
    (unexplained,) = unexplained_burns()
    assert unexplained.from_address == other and int(unexplained.amount_units) == 4 * UNITS
    index_chain_run()
    assert ReconciliationEntry.objects.count() == 1
