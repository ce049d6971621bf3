"""pytest plugin: a real anvil chain with the compiled NTZS token and local Safes (no Django).

Load it with `-p tests.support.chain_fixtures` or `pytest_plugins = [...]` in a conftest.

State isolation: session fixtures deploy once; the function fixture `chain` takes an EVM
snapshot before each test and reverts to it afterwards. pytest sets up every session-scoped
fixture a test requests before its function-scoped ones, so deployments such as `local_safe`
always happen before the snapshot and survive it. Request `chain` in any test that sends
transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError

from minting.contract_artifact import load_ntzs_artifact
from minting.safe_local import SUPPORTED_SAFE_VERSIONS, safe_deploy_local, safe_exec_call
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS, AnvilNode

ADMIN_INDEX = 0
MINTER_INDEX = 1
SAFE_OWNER_INDEX = 2
# Safe infrastructure comes from the last dev account, so the nonces of the accounts the tests
# reason about (admin, minter, Safe owner) are untouched by it.
SAFE_DEPLOYER_INDEX = 9

OPERATIONAL_ROLES = ("BURNER_ROLE", "PAUSER_ROLE", "FREEZER_ROLE", "BLACKLISTER_ROLE", "WIPER_ROLE")
RECEIPT_TIMEOUT_S = 30


def role_id(name: str) -> bytes:
    return keccak(text=name)


def transact(
    w3: Web3,
    private_key: str,
    call: ContractFunction | ContractConstructor,
    gas: int | None = None,
    value: int = 0,
) -> Any:
    """Sign `call` with `private_key`, send it and return the receipt.

    Without `gas` the node estimates it first, so a reverting call raises ContractLogicError
    (ContractCustomError for custom errors) without a transaction being mined.
    """
    sender = Account.from_key(private_key).address
    params: dict[str, Any] = {
        "from": sender,
        "nonce": w3.eth.get_transaction_count(sender, "pending"),
    }
    if value:
        params["value"] = value
    if gas is not None:
        params["gas"] = gas
    signed = Account.from_key(private_key).sign_transaction(call.build_transaction(params))
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)


def decode_custom_error(abi: list[dict[str, Any]], error: ContractLogicError) -> tuple[str, tuple]:
    """(name, args) of the custom error carried by a revert, looked up by selector in `abi`."""
    data = error.data if isinstance(error.data, str) else None
    if not data or len(data) < 10:
        raise ValueError(f"The revert carries no custom error data: {error!r}")
    raw = bytes.fromhex(data.removeprefix("0x"))
    for entry in abi:
        if entry["type"] != "error":
            continue
        types = [item["type"] for item in entry["inputs"]]
        signature = f"{entry['name']}({','.join(types)})"
        if function_signature_to_4byte_selector(signature) == raw[:4]:
            values = decode(types, raw[4:])
            return entry["name"], tuple(map(_checksum_addresses, types, values))
    raise ValueError(f"Unknown custom error selector 0x{raw[:4].hex()}")


def _checksum_addresses(abi_type: str, value: Any) -> Any:
    return Web3.to_checksum_address(value) if abi_type == "address" else value


@dataclass(frozen=True)
class NtzsDeployment:
    node: AnvilNode
    w3: Web3
    contract: Contract
    address: str
    deploy_block: int
    admin_key: str
    admin_address: str
    minter_key: str
    minter_address: str

    @property
    def url(self) -> str:
        return self.node.url

    def transact(self, private_key: str, call: ContractFunction, gas: int | None = None) -> Any:
        return transact(self.w3, private_key, call, gas=gas)


@dataclass(frozen=True)
class LocalSafe:
    version: str
    address: str
    owner_key: str
    owner_address: str
    singleton: str
    proxy_factory: str
    fallback_handler: str
    deploy_block: int
    url: str

    def exec_call(self, to: str, data: bytes, value: int = 0, gas: int | None = None) -> str:
        """execTransaction signed and sent by the owner; returns the transaction hash."""
        return safe_exec_call(
            self.url, self.address, self.owner_key, to, data, value=value, gas=gas
        )


def deploy_ntzs(node: AnvilNode) -> NtzsDeployment:
    """NTZS with dev account 0 as admin (all operational roles) and dev account 1 as minter."""
    w3 = Web3(Web3.HTTPProvider(node.url))
    artifact = load_ntzs_artifact()
    admin_key, admin = DEV_PRIVATE_KEYS[ADMIN_INDEX], DEV_ADDRESSES[ADMIN_INDEX]
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = transact(w3, admin_key, factory.constructor(admin))
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    grants = [("MINTER_ROLE", DEV_ADDRESSES[MINTER_INDEX])]
    grants += [(role, admin) for role in OPERATIONAL_ROLES]
    for role, account in grants:
        transact(w3, admin_key, contract.functions.grantRole(role_id(role), account))
    return NtzsDeployment(
        node=node,
        w3=w3,
        contract=contract,
        address=contract.address,
        deploy_block=receipt["blockNumber"],
        admin_key=admin_key,
        admin_address=admin,
        minter_key=DEV_PRIVATE_KEYS[MINTER_INDEX],
        minter_address=DEV_ADDRESSES[MINTER_INDEX],
    )


def deploy_local_safe(node: AnvilNode, version: str) -> LocalSafe:
    owner_key, owner = DEV_PRIVATE_KEYS[SAFE_OWNER_INDEX], DEV_ADDRESSES[SAFE_OWNER_INDEX]
    info = safe_deploy_local(node.url, DEV_PRIVATE_KEYS[SAFE_DEPLOYER_INDEX], owner, version)
    return LocalSafe(
        version=version,
        address=info["safe_address"],
        owner_key=owner_key,
        owner_address=owner,
        singleton=info["singleton"],
        proxy_factory=info["proxy_factory"],
        fallback_handler=info["fallback_handler"],
        deploy_block=info["deploy_block"],
        url=node.url,
    )


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    node = AnvilNode()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def ntzs_deployment(anvil_node: AnvilNode) -> NtzsDeployment:
    return deploy_ntzs(anvil_node)


@pytest.fixture(scope="session", params=SUPPORTED_SAFE_VERSIONS)
def local_safe(request: pytest.FixtureRequest, ntzs_deployment: NtzsDeployment) -> LocalSafe:
    """A 1-of-1 Safe per supported version; narrow it with
    `@pytest.mark.parametrize("local_safe", ["1.3.0"], indirect=True)`."""
    # Depends on ntzs_deployment so the token is always deployed first, at the same address.
    return deploy_local_safe(ntzs_deployment.node, request.param)


@pytest.fixture
def chain(anvil_node: AnvilNode, ntzs_deployment: NtzsDeployment) -> Iterator[NtzsDeployment]:
    snapshot_id = anvil_node.snapshot()
    yield ntzs_deployment
    anvil_node.revert(snapshot_id)
