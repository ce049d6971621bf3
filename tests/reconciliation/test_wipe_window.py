"""A Safe-executed wipe is attributed only to a request approved before it (issue 15 point 1,
review): the chain's head block is kept with the approved wipe, and a ``Wiped`` burn of the
same holder mined at or below it is not the request's, even if it is the only one waiting;
when the head could not be read at the approval, the burn's block time is compared with the
approval time instead. The burns are looked up by holder and transaction, never through the
first 500 unexplained burns. Real NTZS and Safe on anvil, real PostgreSQL."""

# ruff: noqa: F811 - tests take the imported fixtures as arguments
from __future__ import annotations

import datetime as dt
import time
from urllib.parse import urlparse

import pytest
import time_machine

from core.models import AdminAction
from minting.breaker import rpc_breaker
from minting.chain import role_id
from minting.services.token_admin import token_admin_approve, token_wipe
from reconciliation.models import ChainTransfer, ReconciliationEntry
from reconciliation.selectors import unexplained_burns
from reconciliation.services.matching import index_chain_run
from tests.deposits.conftest import (  # noqa: F401 - shared personas and banks
    amina,
    settlement_bank,
    superadmin,
)
from tests.factories import super_admin
from tests.minting.conftest import minting  # noqa: F401 - shared fixtures
from tests.support.anvil import DEV_ADDRESSES
from tests.support.tcp_proxy import TcpProxy

UNITS = 10**18
HOLDER = DEV_ADDRESSES[8]
ROLES = ("BLACKLISTER_ROLE", "WIPER_ROLE", "MINTER_ROLE")


@pytest.fixture
def superadmin_two(db):
    return super_admin(email="super2@ntzs.test", full_name="Zawadi Mrisho")


@pytest.fixture
def safe_wiper(local_safe, minting, settings):
    """The Safe and the admin key hold the wipe roles; no operator key (the Safe lane);
    indexed from the deploy block."""
    for account in (local_safe.address, minting.admin_address):
        for role in ROLES:
            minting.transact(
                minting.admin_key, minting.contract.functions.grantRole(role_id(role), account)
            )
    settings.SAFE_ADDRESS = local_safe.address
    settings.OPERATOR_PRIVATE_KEY = ""
    settings.NTZS_DEPLOY_BLOCK = minting.deploy_block
    settings.TREASURY_ADDRESSES = []
    rpc_breaker().reset()
    yield local_safe
    rpc_breaker().reset()


def funded_and_blacklisted(chain, amount_units: int) -> None:
    """The holder gets tokens (unblacklisted for it if need be), then is blacklisted."""
    functions = chain.contract.functions
    if functions.isBlacklisted(HOLDER).call():
        chain.transact(chain.admin_key, functions.unblacklist(HOLDER))
    chain.transact(chain.admin_key, functions.mint(HOLDER, amount_units))
    chain.transact(chain.admin_key, functions.blacklist(HOLDER))


def safe_wipe(safe, chain) -> int:
    """The Safe executes wipeBlacklisted(HOLDER); returns the burn's block."""
    data = chain.contract.encode_abi("wipeBlacklisted", [HOLDER])
    tx_hash = safe.exec_call(chain.address, bytes.fromhex(data[2:]))
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1
    return receipt["blockNumber"]


def burns_of_holder() -> dict[int, int]:
    """block → amount (whole tokens) of the holder's indexed burns."""
    return {
        burn.block_number: int(burn.amount_units) // UNITS
        for burn in ChainTransfer.objects.filter(kind="burn", from_address=HOLDER)
    }


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
@pytest.mark.django_db
def test_a_safe_wipe_burn_mined_before_the_approval_is_not_attributed_to_it(
    safe_wiper, minting, superadmin, superadmin_two
):
    chain = minting
    funded_and_blacklisted(chain, 4 * UNITS)
    early_block = safe_wipe(safe_wiper, chain)  # a Safe wipe nobody approved here

    request = token_wipe(address=HOLDER, actor=superadmin, reason="court order 12")
    approved = token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    assert approved.lane == "safe"
    decision = AdminAction.objects.get(pk=approved.action_id)
    head = decision.params["head_block"]
    assert head >= early_block

    counts = index_chain_run()
    assert counts["matching"]["wipes_recorded"] == 0
    assert not ReconciliationEntry.objects.exists()  # the only waiting request: still not it
    (early,) = unexplained_burns()
    assert early.block_number == early_block and int(early.amount_units) == 4 * UNITS

    # The approved payload executed afterwards: that burn, and only that one, is the request's.
    funded_and_blacklisted(chain, 3 * UNITS)
    late_block = safe_wipe(safe_wiper, chain)
    assert late_block > head
    assert index_chain_run()["matching"]["wipes_recorded"] == 1
    entry = ReconciliationEntry.objects.get()
    assert entry.block_number == late_block and int(entry.amount_units) == -3 * UNITS
    assert entry.dual_control_request_id == request.request_id
    assert (entry.created_by, entry.approved_by) == (superadmin, superadmin_two)
    assert burns_of_holder() == {early_block: 4, late_block: 3}
    assert [b.block_number for b in unexplained_burns()] == [early_block]


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
@pytest.mark.django_db
def test_without_the_head_block_the_burns_block_time_is_held_against_the_approval_time(
    safe_wiper, minting, superadmin, superadmin_two, settings
):
    chain = minting
    funded_and_blacklisted(chain, 4 * UNITS)
    early_block = safe_wipe(safe_wiper, chain)
    # The approval one second after that burn by the node's clock (the session's anvil runs
    # behind the wall clock once a snapshot is reverted); block times are whole seconds.
    approved_at = chain.w3.eth.get_block(early_block)["timestamp"] + 1
    time.sleep(1.1)  # the next blocks are at least that late

    # The node is unreachable at the approval: no head block kept.
    proxy = TcpProxy(urlparse(chain.url).port)
    try:
        settings.BASE_SEPOLIA_RPC_URL = proxy.url
        proxy.stop()
        request = token_wipe(address=HOLDER, actor=superadmin, reason="court order 13")
        with time_machine.travel(dt.datetime.fromtimestamp(approved_at, dt.UTC), tick=False):
            approved = token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    finally:
        proxy.stop()
        settings.BASE_SEPOLIA_RPC_URL = chain.url
    assert approved.lane == "safe"
    assert "head_block" not in AdminAction.objects.get(pk=approved.action_id).params

    assert index_chain_run()["matching"]["wipes_recorded"] == 0
    funded_and_blacklisted(chain, 2 * UNITS)
    late_block = safe_wipe(safe_wiper, chain)
    assert index_chain_run()["matching"]["wipes_recorded"] == 1
    entry = ReconciliationEntry.objects.get()
    assert entry.block_number == late_block and int(entry.amount_units) == -2 * UNITS
    assert [b.block_number for b in unexplained_burns()] == [early_block]
