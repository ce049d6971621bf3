"""Minting through a local Safe (1.4.1 and 1.3.0): the receipt the Safe mint path must accept."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eth_utils import keccak
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from minting.contract_artifact import deposit_ref
from minting.safe_local import SafeLocalError, safe_deploy_local
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS
from tests.support.chain_fixtures import LocalSafe, NtzsDeployment, role_id

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
EXECUTION_SUCCESS_TOPIC = keccak(text="ExecutionSuccess(bytes32,uint256)")
RECIPIENT = DEV_ADDRESSES[3]
AMOUNT = 250 * 10**18


def safe_contract(chain: NtzsDeployment, local_safe: LocalSafe) -> Any:
    from safe_eth.eth.contracts import get_safe_contract_by_version

    return get_safe_contract_by_version(local_safe.version, chain.w3, local_safe.address)


def expected_safe_tx_hash(chain: NtzsDeployment, local_safe: LocalSafe, data: bytes) -> bytes:
    """The Safe's own hash of the next transaction (CALL, no refund), read before executing."""
    safe = safe_contract(chain, local_safe)
    nonce = safe.functions.nonce().call()
    return safe.functions.getTransactionHash(
        chain.address, 0, data, 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, nonce
    ).call()


def execution_success_tx_hash(log: Any, version: str) -> bytes:
    # 1.4.1 indexes txHash (topic 1); 1.3.0 puts it first in the data, before `payment`.
    if version == "1.4.1":
        assert len(log["topics"]) == 2
        return bytes(log["topics"][1])
    assert len(log["topics"]) == 1
    return bytes(log["data"][:32])


def grant_minter_to(chain: NtzsDeployment, account: str) -> None:
    grant = chain.contract.functions.grantRole(role_id("MINTER_ROLE"), account)
    chain.transact(chain.admin_key, grant)


def test_mint_for_deposit_through_the_safe(chain: NtzsDeployment, local_safe: LocalSafe) -> None:
    grant_minter_to(chain, local_safe.address)
    ref = deposit_ref(uuid.uuid4())
    data = chain.contract.encode_abi("mintForDeposit", args=[RECIPIENT, AMOUNT, ref])
    safe_tx_hash = expected_safe_tx_hash(chain, local_safe, bytes.fromhex(data[2:]))

    tx_hash = local_safe.exec_call(chain.address, bytes.fromhex(data[2:]))
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash)

    assert receipt["status"] == 1
    assert (receipt["from"], receipt["to"]) == (local_safe.owner_address, local_safe.address)
    successes = [log for log in receipt["logs"] if log["topics"][0] == EXECUTION_SUCCESS_TOPIC]
    assert [log["address"] for log in successes] == [local_safe.address]
    assert execution_success_tx_hash(successes[0], local_safe.version) == safe_tx_hash

    transfer_event = chain.contract.events.Transfer()
    (transfer,) = transfer_event.process_receipt(receipt, errors=DISCARD)
    (minted,) = chain.contract.events.DepositMinted().process_receipt(receipt, errors=DISCARD)
    assert transfer.address == minted.address == chain.address
    assert (transfer.args["from"], transfer.args.to, transfer.args.value) == (
        ZERO_ADDRESS,
        RECIPIENT,
        AMOUNT,
    )
    assert (minted.args.depositRef, minted.args.to, minted.args.amount) == (ref, RECIPIENT, AMOUNT)
    assert minted.logIndex == transfer.logIndex + 1
    assert chain.contract.functions.isDepositMinted(ref).call()
    assert chain.contract.functions.balanceOf(RECIPIENT).call() == AMOUNT


def test_safe_call_that_fails_reverts_the_safe_transaction(
    chain: NtzsDeployment, local_safe: LocalSafe
) -> None:
    # No MINTER_ROLE for the Safe: with safeTxGas = 0 the Safe reverts the whole transaction.
    data = chain.contract.encode_abi("mint", args=[RECIPIENT, AMOUNT])
    payload = bytes.fromhex(data[2:])
    nonce_before = safe_contract(chain, local_safe).functions.nonce().call()

    with pytest.raises(ContractLogicError):
        local_safe.exec_call(chain.address, payload)
    tx_hash = local_safe.exec_call(chain.address, payload, gas=300_000)
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash)

    assert receipt["status"] == 0
    assert receipt["logs"] == []
    assert safe_contract(chain, local_safe).functions.nonce().call() == nonce_before
    assert chain.contract.functions.balanceOf(RECIPIENT).call() == 0


def test_unsupported_safe_version_is_refused(anvil_node: Any) -> None:
    with pytest.raises(SafeLocalError, match="1.5.0 is not supported"):
        safe_deploy_local(anvil_node.url, DEV_PRIVATE_KEYS[9], DEV_ADDRESSES[2], "1.5.0")
