"""`manage.py deploy_ntzs` checks the deployer's gas before it sends anything (issue 15
point 6; DESIGN §12 "contract deployment"): a deployer short of the deployment's most
expensive cost is refused with what it holds and what it needs, its nonce untouched and no
deployment recorded; one holding exactly that much deploys, and the grants stay within the
gas the check reserves for them. On anvil, and behind the Base-like proxy for the L1 fee."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from eth_account import Account

from minting.contract_artifact import load_ntzs_artifact
from minting.models import TokenDeployment
from minting.selectors import wei_as_eth
from minting.services.deploy import GRANT_GAS, ntzs_deploy_cost
from tests.support.anvil import DEV_ADDRESSES
from tests.support.base_proxy import DEFAULT_L1_FEE_WEI

# Not one of anvil's funded dev keys: a deployer whose balance the test sets.
FRESH_KEY = "0x" + "4d" * 32
FRESH = Account.from_key(FRESH_KEY).address
pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_deployer(chain_settings, settings, monkeypatch, anvil_node):
    """DEPLOYER_PRIVATE_KEY is a fresh key; the minter and a Safe get MINTER_ROLE (two
    grants). Returns a function setting the deployer's balance (reverted with the chain)."""
    monkeypatch.setenv("DEPLOYER_PRIVATE_KEY", FRESH_KEY)
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = ""
    settings.SAFE_ADDRESS = DEV_ADDRESSES[8]

    def fund(wei: int) -> None:
        anvil_node.rpc("anvil_setBalance", FRESH, hex(wei))

    return fund


def _cost(chain):
    """The cost the command will compute: the same constructor call and two grants."""
    artifact = load_ntzs_artifact()
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    data = bytes.fromhex(factory.constructor(FRESH).data_in_transaction[2:])
    return ntzs_deploy_cost(chain.w3, deployer_key=FRESH_KEY, data=data, grants=2)


def _nonce(chain) -> int:
    return chain.w3.eth.get_transaction_count(FRESH, "pending")


def test_a_deployer_short_of_gas_is_told_what_it_needs_and_nothing_is_sent(
    fresh_deployer, chain_settings
):
    fresh_deployer(10**12)  # 0.000001 ETH
    cost = _cost(chain_settings)
    assert cost.balance_wei == 10**12 and cost.needed_wei > 10**12

    with pytest.raises(CommandError) as refused:
        call_command("deploy_ntzs")

    message = str(refused.value)
    assert message == (
        f"The deployer {FRESH} holds 0.000001 ETH but the deployment (the token and 2 "
        f"MINTER_ROLE grant(s)) needs up to {wei_as_eth(cost.needed_wei)} for gas (20 % over "
        "the node's estimate at twice the base fee plus the tip, and twice the L1 data fee); "
        f"send it at least {wei_as_eth(cost.needed_wei - 10**12)} and run deploy_ntzs again. "
        "Nothing was sent."
    )
    assert _nonce(chain_settings) == 0
    assert chain_settings.w3.eth.get_balance(FRESH) == 10**12
    assert TokenDeployment.objects.count() == 0


def test_one_wei_short_of_the_most_the_deployment_can_cost_is_refused(
    fresh_deployer, chain_settings
):
    fresh_deployer(10**18)
    needed = _cost(chain_settings).needed_wei
    fresh_deployer(needed - 1)

    with pytest.raises(CommandError, match="needs up to .* send it at least 0.000000000000000001"):
        call_command("deploy_ntzs")
    assert _nonce(chain_settings) == 0
    assert TokenDeployment.objects.count() == 0


def test_a_deployer_holding_exactly_the_needed_amount_deploys_and_grants(
    fresh_deployer, chain_settings
):
    fresh_deployer(10**18)
    needed = _cost(chain_settings).needed_wei
    fresh_deployer(needed)

    call_command("deploy_ntzs")

    deployment = TokenDeployment.objects.get()
    assert deployment.deployer_address == FRESH
    w3 = chain_settings.w3
    assert _nonce(chain_settings) == 3  # the token and two grants
    grants = [
        tx
        for number in range(deployment.deploy_block + 1, w3.eth.block_number + 1)
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]
        if tx["from"] == FRESH
    ]
    assert len(grants) == 2
    # Each grant's gas limit (the node's estimate + 20 %) is within what the check reserved.
    assert all(tx["gas"] <= GRANT_GAS for tx in grants), [tx["gas"] for tx in grants]
    assert 0 < w3.eth.get_balance(FRESH) < needed


def test_on_base_the_l1_data_fee_counts_twice_for_each_transaction(
    fresh_deployer, chain_settings, base_proxy
):
    """Behind the Base-like proxy (the stub GasPriceOracle charges DEFAULT_L1_FEE_WEI a
    transaction): the token and two grants add twice three L1 fees to the gas."""
    fresh_deployer(10**18)
    w3 = chain_settings.w3
    cost = _cost(chain_settings)
    artifact = load_ntzs_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    gas = w3.eth.estimate_gas(
        {"from": FRESH, "data": factory.constructor(FRESH).data_in_transaction}
    )
    max_fee = 2 * w3.eth.get_block("latest")["baseFeePerGas"] + w3.eth.max_priority_fee
    execution = (gas * 12 // 10 + 2 * GRANT_GAS) * max_fee
    assert cost.needed_wei == execution + 2 * 3 * DEFAULT_L1_FEE_WEI

    fresh_deployer(execution)  # enough for the execution gas, not for the L1 data
    with pytest.raises(CommandError, match=f"needs up to {wei_as_eth(cost.needed_wei)} "):
        call_command("deploy_ntzs")
    assert _nonce(chain_settings) == 0
    assert TokenDeployment.objects.count() == 0
