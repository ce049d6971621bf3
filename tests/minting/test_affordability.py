"""Affordability before signing (DESIGN §7.4, issue 10 item 5): a batch is shrunk to what the
minter's balance covers for every unmined transaction and the new ones (gas limit x max fee,
plus twice the L1 data fee from the OP Stack's GasPriceOracle), MINTER_MIN_GAS_ETH stays the
alert floor, and each mined attempt records its receipt's cost (``l1Fee`` included) for the
day's cost of minting in ``mint_status``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from eth_account import Account

from core.clock import today_utc
from core.models import Alert
from deposits.models import DepositRequest
from minting.breaker import rpc_breaker
from minting.chain import account_address, role_id
from minting.contract_artifact import NTZS_ABI
from minting.models import MintAttempt, SignerAccount
from minting.rpc import mint_client
from minting.selectors import mint_cost_of_day, wei_as_eth
from minting.services.pipeline import (
    BALANCE_SHORT_ALERT,
    l1_fee_sample,
    mint_cost_wei,
    mint_preflight,
)
from minting.services.runner import confirm_run, mint_jobs_run
from minting.signing import Fees, fees_quote, mint_gas_limit
from tests.support.base_proxy import DEFAULT_L1_FEE_WEI

GWEI = 10**9


@pytest.fixture
def held_blocks(base_proxy, minting, anvil_node, settings) -> Iterator:
    """Through the Base-like proxy (stub GasPriceOracle, l1Fee on receipts), blocks only when
    the test mines one, a known base fee; the breaker reset before and after."""
    settings.CIRCUIT_OPEN_S = 0
    rpc_breaker().reset()
    anvil_node.rpc("anvil_setNextBlockBaseFeePerGas", hex(GWEI))
    anvil_node.rpc("evm_mine")
    anvil_node.rpc("evm_setAutomine", False)
    try:
        yield anvil_node
    finally:
        anvil_node.rpc("evm_setAutomine", True)
        rpc_breaker().reset()


def one_mint_cost() -> int:
    """What the pipeline budgets for one new mint now (its own fee and L1 readers)."""
    client = mint_client()
    fees = fees_quote(base_fee=client.next_base_fee(), tip=client.priority_fee(), cap=10**15).fees
    return mint_cost_wei(
        gas_limit=mint_gas_limit(),
        max_fee_per_gas=fees.max_fee_per_gas,
        l1_fee_wei=DEFAULT_L1_FEE_WEI,
    )


def minted() -> int:
    return DepositRequest.objects.filter(status="minted").count()


def gas_alert_open() -> bool:
    return Alert.objects.filter(kind="minter gas low", resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_the_l1_fee_is_read_from_the_gas_price_oracle_only_where_it_exists(
    minting, paid_deposit, anvil_node
):
    paid_deposit()
    assert mint_preflight(mint_client).l1_fee_wei == 0  # plain anvil: no predeploy
    anvil_node.rpc(
        "anvil_setCode",
        "0x420000000000000000000000000000000000000F",
        "0x7f" + (123_456).to_bytes(32, "big").hex() + "60005260206000f3",
    )
    assert mint_preflight(mint_client).l1_fee_wei == 123_456


@pytest.mark.django_db
def test_a_balance_covering_ten_pending_mints_shrinks_the_batches_and_alerts_at_the_floor(
    held_blocks, base_proxy, paid_deposit, chain, settings, caplog
):
    per_mint = one_mint_cost()
    balance = 10 * per_mint + per_mint // 2
    held_blocks.rpc("anvil_setBalance", chain.minter_address, hex(balance))
    base_proxy.balance_wei = balance  # the node counts every pending transaction's cost
    settings.MINTER_MIN_GAS_WEI = 8 * per_mint
    for i in range(30):
        paid_deposit(1_000 + i)

    with caplog.at_level(logging.WARNING, logger="minting"):
        first = mint_jobs_run()
    assert first["signed"] == 10 and first["sent"] == {"sent": 10}
    assert "mint batch shrunk to 10 of 30" in caplog.text
    assert mint_jobs_run()["signed"] == 0  # ten unmined transactions take the whole balance
    assert not gas_alert_open()

    signed = [10]
    for _ in range(5):  # mine, confirm, sign what the rest of the balance covers
        held_blocks.rpc("evm_mine")
        base_proxy.balance_wei = chain.w3.eth.get_balance(chain.minter_address)
        confirm_run()
        result = mint_jobs_run()
        if result["waiting"]:
            break
        signed.append(result["signed"])

    assert "below MINTER_MIN_GAS_ETH" in result["waiting"]
    assert gas_alert_open()  # at the floor, and only there
    assert len(signed) >= 2 and all(0 < count <= 10 for count in signed)
    assert base_proxy.refusals["insufficient_funds"] == 0
    held_blocks.rpc("evm_mine")
    confirm_run()
    assert minted() == sum(signed) < 30
    assert MintAttempt.objects.filter(status__in=("signed", "sent")).count() == 0


@pytest.mark.django_db
def test_each_mined_attempt_records_its_cost_and_l1_fee_for_the_days_cost_of_minting(
    held_blocks, paid_deposit, chain
):
    for i in range(3):
        paid_deposit(1_000 + i)
    assert mint_jobs_run()["signed"] == 3
    held_blocks.rpc("evm_mine")
    confirm_run()

    attempts = list(MintAttempt.objects.all())
    assert len(attempts) == 3 and all(a.status == "mined_ok" for a in attempts)
    for attempt in attempts:
        receipt = chain.w3.eth.get_transaction_receipt(attempt.tx_hash)
        assert attempt.gas_used == receipt["gasUsed"]
        assert attempt.effective_gas_price == receipt["effectiveGasPrice"]
        assert attempt.l1_fee == DEFAULT_L1_FEE_WEI  # the proxy's l1Fee on the receipt
        assert attempt.mined_on == today_utc()
    cost = mint_cost_of_day()
    expected_gas = sum(a.gas_used * int(a.effective_gas_price) for a in attempts)
    assert (cost.transactions, cost.gas_wei, cost.l1_fee_wei) == (
        3,
        expected_gas,
        3 * DEFAULT_L1_FEE_WEI,
    )

    out = StringIO()
    call_command("mint_status", "--offline", stdout=out)
    assert f"mint_cost_today: {wei_as_eth(expected_gas + 3 * DEFAULT_L1_FEE_WEI)}" in (
        out.getvalue()
    )
    out = StringIO()
    call_command("mint_status", "--offline", "--json", stdout=out)
    assert json.loads(out.getvalue())["mint_cost_today"]["total_wei"] == cost.total_wei


def test_wei_is_shown_as_exact_eth():
    assert wei_as_eth(0) == "0 ETH"
    assert wei_as_eth(1) == "0.000000000000000001 ETH"
    assert wei_as_eth(21_000 * 10**9 + 7 * 10**12) == "0.000028 ETH"
    assert wei_as_eth(3 * 10**18) == "3 ETH"


@pytest.mark.django_db
def test_a_balance_above_the_floor_that_covers_no_mint_signs_nothing_and_alerts(
    held_blocks, base_proxy, paid_deposit, chain, settings
):
    per_mint = one_mint_cost()
    held_blocks.rpc("anvil_setBalance", chain.minter_address, hex(per_mint - 1))
    settings.MINTER_MIN_GAS_WEI = per_mint // 2  # a floor set too low for these fees
    deposit = paid_deposit()

    result = mint_jobs_run()

    assert result["signed"] == 0 and result["waiting"] == ""
    # Nothing in flight will free any balance: a person must top up. An alert of its own
    # (check_minter resolves "minter gas low" above the floor every few minutes).
    short = Alert.objects.get(kind=BALANCE_SHORT_ALERT, resolved_at__isnull=True)
    assert "not enough for one mint" in short.detail
    assert not gas_alert_open()
    assert base_proxy.requests_seen["eth_sendRawTransaction"] == 0
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"


@pytest.mark.django_db
def test_the_l1_fee_sample_is_signed_by_a_key_that_cannot_mint(minting, settings):
    """The sample is a whole signed transaction handed to the RPC provider: signed by the
    minter, anyone on the path could broadcast a real mint of MAX_DEPOSIT_TZS at the
    minter's next nonce."""
    minter = account_address(settings.MINTER_PRIVATE_KEY)
    signer = SignerAccount(address=minter, chain_id=31337, next_nonce=7, last_mined_nonce=7)
    fees = Fees(max_fee_per_gas=4 * GWEI, max_priority_fee_per_gas=1)

    raw = l1_fee_sample(contract=minting.address, signer=signer, fees=fees)

    sender = Account.recover_transaction(raw)
    assert sender != minter
    assert (
        not minting.w3.eth.contract(address=minting.address, abi=NTZS_ABI)
        .functions.hasRole(role_id("MINTER_ROLE"), sender)
        .call()
    )
    assert len(raw) >= 200  # as large as a real mintForDeposit: what the L1 fee is paid on
