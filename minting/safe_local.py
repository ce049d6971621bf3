"""A Safe{Wallet} multisig on a local chain (anvil), for the Safe mint path and its tests.

safe-eth-py is a dev dependency, so it is imported inside the functions: production code may
import this module (e.g. a local-profile management command) without having it installed.

The singletons are the L2 variants that safe-eth-py ships (GnosisSafeL2 1.3.0, SafeL2 1.4.1), the
ones Safe{Wallet} deploys on Base: execTransaction also emits SafeMultiSigTransaction before
ExecutionSuccess. The two supported versions differ in ExecutionSuccess (same topic 0):
  1.3.0  ExecutionSuccess(bytes32 txHash, uint256 payment)          both in data
  1.4.1  ExecutionSuccess(bytes32 indexed txHash, uint256 payment)  txHash in topic 1
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

SUPPORTED_SAFE_VERSIONS = ("1.4.1", "1.3.0")
NULL_ADDRESS = "0x0000000000000000000000000000000000000000"
RECEIPT_TIMEOUT_S = 30


class SafeLocalError(RuntimeError):
    pass


def _web3(rpc_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": RECEIPT_TIMEOUT_S}))


def _contract_factories(version: str) -> dict[str, Any]:
    from safe_eth.eth import contracts

    if version not in SUPPORTED_SAFE_VERSIONS:
        raise SafeLocalError(
            f"Safe version {version} is not supported (use one of {SUPPORTED_SAFE_VERSIONS})."
        )
    suffix = version.replace(".", "_")
    return {
        "singleton": getattr(contracts, f"get_safe_V{suffix}_contract"),
        "proxy_factory": getattr(contracts, f"get_proxy_factory_V{suffix}_contract"),
        "fallback_handler": getattr(
            contracts, f"get_compatibility_fallback_handler_V{suffix}_contract"
        ),
    }


def _send(w3: Web3, private_key: str, tx: dict[str, Any]) -> dict[str, Any]:
    """Sign, send and wait; a reverted transaction is an error here (deployment only)."""
    signed = Account.from_key(private_key).sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    if receipt["status"] != 1:
        raise SafeLocalError(f"Transaction {tx_hash.to_0x_hex()} reverted.")
    return receipt


def _tx_params(w3: Web3, sender: str) -> dict[str, Any]:
    return {
        "from": sender,
        "nonce": w3.eth.get_transaction_count(sender, "pending"),
        "chainId": w3.eth.chain_id,
    }


def _deploy(w3: Web3, private_key: str, contract_factory: Any) -> str:
    sender = Account.from_key(private_key).address
    tx = contract_factory.constructor().build_transaction(_tx_params(w3, sender))
    return _send(w3, private_key, tx)["contractAddress"]


def _setup_call_data(singleton: Any, owner: str, fallback_handler: str) -> bytes:
    # setup(owners, threshold, to, data, fallbackHandler, paymentToken, payment, paymentReceiver)
    # has the same signature in 1.3.0 and 1.4.1.
    return singleton.encode_abi(
        "setup",
        args=[[owner], 1, NULL_ADDRESS, b"", fallback_handler, NULL_ADDRESS, 0, NULL_ADDRESS],
    )


def _create_proxy(
    w3: Web3, private_key: str, factory: Any, singleton: str, initializer: bytes, salt: int
) -> tuple[str, int]:
    sender = Account.from_key(private_key).address
    create = factory.functions.createProxyWithNonce(singleton, initializer, salt)
    receipt = _send(w3, private_key, create.build_transaction(_tx_params(w3, sender)))
    # The receipt also holds the new Safe's own SafeSetup log; only the factory's log matters.
    factory_logs = {
        **receipt,
        "logs": [log for log in receipt["logs"] if log["address"] == factory.address],
    }
    events = factory.events.ProxyCreation().process_receipt(factory_logs, errors=DISCARD)
    if len(events) != 1:
        raise SafeLocalError("The proxy factory did not report exactly one ProxyCreation.")
    return events[0]["args"]["proxy"], receipt["blockNumber"]


def safe_deploy_local(
    rpc_url: str,
    deployer_key: str,
    owner_address: str,
    version: str = "1.4.1",
    salt_nonce: int | None = None,
) -> dict[str, Any]:
    """Deploy singleton, proxy factory and fallback handler of `version`, then a 1-of-1 Safe.

    Returns {"safe_address", "version", "singleton", "proxy_factory", "fallback_handler",
    "owner", "deploy_block"}. Each call deploys a fresh set of contracts (plain CREATE), so it
    works on any chain state; the proxy salt defaults to the deployer's nonce.
    """
    factories = _contract_factories(version)
    w3 = _web3(rpc_url)
    owner = Web3.to_checksum_address(owner_address)
    singleton = _deploy(w3, deployer_key, factories["singleton"](w3))
    proxy_factory = _deploy(w3, deployer_key, factories["proxy_factory"](w3))
    fallback_handler = _deploy(w3, deployer_key, factories["fallback_handler"](w3))
    deployer = Account.from_key(deployer_key).address
    salt = salt_nonce if salt_nonce is not None else w3.eth.get_transaction_count(deployer)
    initializer = _setup_call_data(factories["singleton"](w3), owner, fallback_handler)
    safe_address, deploy_block = _create_proxy(
        w3, deployer_key, factories["proxy_factory"](w3, proxy_factory), singleton,
        initializer, salt,
    )  # fmt: skip
    _check_deployed_safe(factories["singleton"](w3, safe_address), version, owner)
    return {
        "safe_address": Web3.to_checksum_address(safe_address),
        "version": version,
        "singleton": singleton,
        "proxy_factory": proxy_factory,
        "fallback_handler": fallback_handler,
        "owner": owner,
        "deploy_block": deploy_block,
    }


def _check_deployed_safe(safe: Any, version: str, owner: str) -> None:
    found = (safe.functions.VERSION().call(), safe.functions.getOwners().call(),
             safe.functions.getThreshold().call())  # fmt: skip
    if found != (version, [owner], 1):
        raise SafeLocalError(f"The new Safe is not a 1-of-1 Safe {version} of {owner}: {found}.")


def safe_exec_call(
    rpc_url: str,
    safe_address: str,
    owner_key: str,
    to: str,
    data: bytes,
    value: int = 0,
    gas: int | None = None,
) -> str:
    """Execute one CALL through a 1-of-1 Safe, signed and sent by its owner; returns the tx hash.

    Without `gas` the node estimates it, so a call that would fail raises here instead of
    landing. Pass `gas` to put a transaction on chain whatever its outcome (e.g. to record a
    reverted Safe transaction). The receipt is not awaited.
    """
    from safe_eth.eth import EthereumClient
    from safe_eth.safe import Safe

    client = EthereumClient(rpc_url)
    safe = Safe(Web3.to_checksum_address(safe_address), client)
    safe_tx = safe.build_multisig_tx(Web3.to_checksum_address(to), value, bytes(data))
    safe_tx.sign(owner_key)
    w3 = client.w3
    sender = Account.from_key(owner_key).address
    params = _tx_params(w3, sender)
    if gas is not None:
        params["gas"] = gas
    tx = safe_tx.w3_tx.build_transaction(params)
    signed = Account.from_key(owner_key).sign_transaction(tx)
    return w3.eth.send_raw_transaction(signed.raw_transaction).to_0x_hex()
