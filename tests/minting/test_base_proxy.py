"""The Base-like proxy itself: each limit answers as Base does, and only when switched on."""

from __future__ import annotations

import pytest
import requests
from eth_account import Account
from web3 import Web3

from tests.support.anvil import DEV_PRIVATE_KEYS
from tests.support.base_proxy import (
    DEFAULT_L1_FEE_WEI,
    GAS_PRICE_ORACLE,
    BaseProxy,
)

SENDER_KEY = DEV_PRIVATE_KEYS[5]


def _post(proxy: BaseProxy, payload):
    return requests.post(proxy.url, json=payload, timeout=10)


def _call(method: str, *params, request_id: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}


def _signed(w3: Web3, nonce: int, *, max_fee: int = 10**10) -> str:
    account = Account.from_key(SENDER_KEY)
    tx = {
        "type": 2,
        "chainId": 31337,
        "nonce": nonce,
        "to": account.address,
        "value": 0,
        "gas": 21_000,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": 1,
    }
    return "0x" + account.sign_transaction(tx).raw_transaction.hex()


def _chain_nonce(w3: Web3) -> int:
    return w3.eth.get_transaction_count(Account.from_key(SENDER_KEY).address, "latest")


@pytest.fixture
def proxy(chain, anvil_node):
    with BaseProxy(anvil_node.url) as running:
        yield running


def test_a_batch_over_the_limit_is_refused_with_one_error_object(proxy):
    proxy.batch_limit = 3
    fits = _post(proxy, [_call("eth_chainId", request_id=i) for i in range(3)]).json()
    too_big = _post(proxy, [_call("eth_chainId", request_id=i) for i in range(4)]).json()
    assert [answer["result"] for answer in fits] == ["0x7a69"] * 3
    assert isinstance(too_big, dict) and too_big["error"]["code"] == -32014


def test_rate_limited_items_are_refused_inside_a_200_and_single_calls_get_429(proxy):
    proxy.rate_limit(per_s=0.001, burst=2)
    response = _post(proxy, [_call("eth_chainId", request_id=i) for i in range(4)])
    assert response.status_code == 200
    codes = [answer.get("error", {}).get("code") for answer in response.json()]
    assert codes == [None, None, -32016, -32016]
    assert _post(proxy, _call("eth_chainId")).status_code == 429
    proxy.rate_limit(per_s=None)
    assert _post(proxy, _call("eth_chainId")).json()["result"] == "0x7a69"


def test_a_sender_16_nonces_ahead_of_the_chain_gets_txpool_is_full(proxy, chain):
    proxy.sender_cap = 16
    base = _chain_nonce(chain.w3)
    chain.node.rpc("evm_setAutomine", False)
    try:
        answers = _post(
            proxy,
            [
                _call("eth_sendRawTransaction", _signed(chain.w3, base + i), request_id=i)
                for i in range(17)
            ],
        ).json()
    finally:
        chain.node.rpc("evm_setAutomine", True)
    assert all("result" in answer for answer in answers[:16])
    assert answers[16]["error"]["message"] == "txpool is full"
    assert proxy.refusals["txpool_full"] == 1


def test_a_nonce_sent_too_often_is_over_the_sender_rate_limit(proxy, chain):
    proxy.resend_limit = 2
    raw = _signed(chain.w3, _chain_nonce(chain.w3))
    chain.node.rpc("evm_setAutomine", False)
    try:
        answers = [_post(proxy, _call("eth_sendRawTransaction", raw)).json() for _ in range(3)]
    finally:
        chain.node.rpc("evm_setAutomine", True)
    assert "result" in answers[0]
    assert answers[2]["error"] == {"code": -32017, "message": "sender is over rate limit"}


def test_a_dropped_nonce_is_answered_with_its_hash_and_never_reaches_the_node(proxy, chain):
    nonce = _chain_nonce(chain.w3)
    proxy.drop(nonce=nonce)
    raw = _signed(chain.w3, nonce)
    tx_hash = _post(proxy, _call("eth_sendRawTransaction", raw)).json()["result"]
    assert chain.w3.eth.get_transaction_count(Account.from_key(SENDER_KEY).address) == nonce
    assert _post(proxy, _call("eth_getTransactionByHash", tx_hash)).json()["result"] is None
    resent = _post(proxy, _call("eth_sendRawTransaction", raw)).json()["result"]
    # The drop was for one send only. Anvil answers a send before its miner has sealed the
    # block, so the receipt is awaited rather than the nonce read at once.
    assert chain.w3.eth.wait_for_transaction_receipt(resent, timeout=10)["status"] == 1
    assert _chain_nonce(chain.w3) == nonce + 1


def test_pending_cost_above_the_balance_is_insufficient_funds(proxy, chain):
    cost = 21_000 * 10**10 + DEFAULT_L1_FEE_WEI
    proxy.balance_wei = 2 * cost
    base = _chain_nonce(chain.w3)
    chain.node.rpc("evm_setAutomine", False)
    try:
        answers = [
            _post(proxy, _call("eth_sendRawTransaction", _signed(chain.w3, base + i))).json()
            for i in range(3)
        ]
    finally:
        chain.node.rpc("evm_setAutomine", True)
    assert ["result" in answer for answer in answers] == [True, True, False]
    assert answers[2]["error"]["message"].startswith("insufficient funds")


def test_get_logs_over_the_range_limit_is_refused_and_within_it_forwarded(proxy, chain):
    proxy.logs_max_range = 20  # 2,000 by default on Base; small here to keep the chain short
    chain.node.rpc("anvil_mine", hex(25))
    head = chain.w3.eth.block_number
    wide = _post(proxy, _call("eth_getLogs", {"fromBlock": hex(head - 20), "toBlock": "latest"}))
    narrow = _post(
        proxy, _call("eth_getLogs", {"fromBlock": hex(head - 19), "toBlock": hex(head)})
    ).json()
    assert wide.json()["error"] == {"code": -32005, "message": "query exceeds max block range 20"}
    assert narrow["result"] == []


def test_receipts_carry_the_l1_fee_of_the_stub_oracle(base_proxy, chain):
    w3 = Web3(Web3.HTTPProvider(base_proxy.url))
    tx_hash = w3.eth.send_raw_transaction(_signed(w3, _chain_nonce(w3)))
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    oracle = w3.eth.call({"to": GAS_PRICE_ORACLE, "data": "0x49948e0e" + "00" * 64})
    assert int(receipt["l1Fee"], 16) == DEFAULT_L1_FEE_WEI
    assert int.from_bytes(oracle, "big") == DEFAULT_L1_FEE_WEI


@pytest.mark.chain  # its own anvil, not one of conftest's CHAIN_FIXTURES
def test_the_lagging_chain_keeps_safe_and_finalized_behind_latest(lagging_chain):
    w3 = lagging_chain.w3
    lagging_chain.node.rpc("anvil_mine", hex(max(0, 20 - w3.eth.block_number)))
    latest = w3.eth.block_number
    assert w3.eth.get_block("safe")["number"] == latest - 4
    assert w3.eth.get_block("finalized")["number"] == latest - 8
