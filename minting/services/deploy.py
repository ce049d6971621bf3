"""Writes of the minting app (the mint pipeline arrives with its own issue)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from eth_account import Account
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import Web3Exception

from core.clock import now
from core.services import alert_raise, alert_resolve
from minting.chain import (
    ChainError,
    ChainUnavailable,
    NtzsClient,
    account_address,
    chain_id_check,
    contract_code_present,
    hex_str,
    l1_data_fee,
    ntzs_from_settings,
    role_id,
    transact,
    web3_connect,
)
from minting.contract_artifact import load_ntzs_artifact
from minting.models import MinterCheckRecord, TokenDeployment
from minting.selectors import wei_as_eth
from minting.services.deposit_refs import mint_with_ref_policy

logger = logging.getLogger("minting")


class DeployRefused(ChainError):
    """deploy_ntzs will not deploy (code already there, a redeploy needs --force, or the
    deployer cannot pay for the gas)."""


@dataclass(frozen=True)
class DeployPlan:
    rpc_url: str
    chain_id: int
    deployer_key: str
    minter_address: str
    safe_address: str
    configured_address: str
    allow_redeploy: bool


def ntzs_deploy(plan: DeployPlan) -> TokenDeployment:
    """Deploy NTZS, grant MINTER_ROLE to the minter (and the Safe), record the deploy block.

    Refuses when the configured address already holds code. A configured address without
    code (a lost local chain) is redeployed only when ``allow_redeploy`` (the local profile,
    or --force)."""
    w3 = web3_connect(plan.rpc_url)
    chain_id_check(w3, expected=plan.chain_id, rpc_url=plan.rpc_url)
    if plan.configured_address:
        if contract_code_present(w3, plan.configured_address):
            raise DeployRefused(
                f"NTZS is already deployed at {plan.configured_address} on chain "
                f"{plan.chain_id}; refusing to deploy another token over it."
            )
        if not plan.allow_redeploy:
            raise DeployRefused(
                f"The configured NTZS address {plan.configured_address} has no code on chain "
                f"{plan.chain_id}; pass --force to deploy a new token, then update "
                "NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA."
            )
    artifact = load_ntzs_artifact()
    deployer = account_address(plan.deployer_key)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    data = factory.constructor(deployer).data_in_transaction
    grantees = list(filter(None, [plan.minter_address, plan.safe_address]))
    # Before anything is sent: a deployer that runs dry between the token and its grants
    # leaves a token nobody may mint with.
    cost = ntzs_deploy_cost(
        w3, deployer_key=plan.deployer_key, data=bytes.fromhex(data[2:]), grants=len(grantees)
    )
    if cost.short:
        raise DeployRefused(cost.refusal)
    receipt = transact(w3, private_key=plan.deployer_key, data=bytes.fromhex(data[2:]))
    address = to_checksum_address(receipt["contractAddress"])
    for grantee in grantees:
        grant = w3.eth.contract(address=address, abi=artifact["abi"]).encode_abi(
            "grantRole", args=[role_id("MINTER_ROLE"), to_checksum_address(grantee)]
        )
        transact(w3, private_key=plan.deployer_key, to=address, data=bytes.fromhex(grant[2:]))
    block = w3.eth.get_block(receipt["blockNumber"])
    deployment = TokenDeployment.objects.create(
        chain_id=plan.chain_id,
        contract_address=address,
        deploy_block=receipt["blockNumber"],
        deploy_block_hash=hex_str(block["hash"]),
        tx_hash=hex_str(receipt["transactionHash"]),
        deployer_address=deployer,
    )
    logger.info(
        "NTZS deployed address=%s block=%s chain=%s",
        address,
        deployment.deploy_block,
        plan.chain_id,
    )
    return deployment


# The most the deployment's transactions can cost, the way chain.transact sends them: each
# transaction's gas is 20 % over the node's estimate, at a max fee of twice the latest base
# fee plus the suggested tip; the L1 data fee (OP Stack chains such as Base) counts twice, as
# it follows L1's fees. A deployer holding this much cannot run dry between the token and its
# grants even if the base fee rises for a few blocks meanwhile.
GAS_MARGIN_NUM, GAS_MARGIN_DEN = 12, 10
L1_FEE_MARGIN = 2
# A grantRole cannot be estimated before the token exists. On OpenZeppelin's AccessControl
# granting a role to a new account costs about 52,000 gas (a cold storage write and a log);
# this covers it with transact's 20 % (tests/minting/test_deploy_gas.py compares it with the
# receipts).
GRANT_GAS = 80_000


@dataclass(frozen=True)
class DeployCost:
    deployer: str
    balance_wei: int
    needed_wei: int  # the most the token and its grants can cost (margins above)
    grants: int
    max_fee_per_gas_wei: int

    @property
    def short(self) -> bool:
        return self.balance_wei < self.needed_wei

    @property
    def refusal(self) -> str:
        return (
            f"The deployer {self.deployer} holds {wei_as_eth(self.balance_wei)} but the "
            f"deployment (the token and {self.grants} MINTER_ROLE grant(s)) needs up to "
            f"{wei_as_eth(self.needed_wei)} for gas (20 % over the node's estimate at twice "
            f"the base fee plus the tip, and twice the L1 data fee); send it at least "
            f"{wei_as_eth(self.needed_wei - self.balance_wei)} and run deploy_ntzs again. "
            "Nothing was sent."
        )


def ntzs_deploy_cost(w3: Web3, *, deployer_key: str, data: bytes, grants: int) -> DeployCost:
    """What the deployment can cost at most and what the deployer holds, read before any
    transaction is sent (the transactions are signed here only to price their L1 data)."""
    deployer = Account.from_key(deployer_key)
    try:
        # Estimated without fees, so a short balance reads as "short", not as a refusal.
        gas = w3.eth.estimate_gas({"from": deployer.address, "data": data})
        base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
        tip = w3.eth.max_priority_fee
        balance = w3.eth.get_balance(deployer.address, "latest")
        nonce = w3.eth.get_transaction_count(deployer.address, "pending")
        chain_id = w3.eth.chain_id
    except ValueError as exc:  # the node refuses the estimate: the constructor reverts
        raise ChainError(f"The node refused to estimate the deployment: {exc}") from None
    except (OSError, LookupError, Web3Exception) as exc:
        raise ChainUnavailable(
            f"The deployer's gas could not be checked ({type(exc).__name__})."
        ) from None
    max_fee = 2 * base_fee + tip
    deploy_gas = gas * GAS_MARGIN_NUM // GAS_MARGIN_DEN
    fees = {"chainId": chain_id, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
    fees |= {"type": 2, "value": 0}
    signed = deployer.sign_transaction(fees | {"nonce": nonce, "gas": deploy_gas, "data": data})
    l1_fee = l1_data_fee(w3, signed.raw_transaction)
    if grants:
        grant = w3.eth.contract(abi=load_ntzs_artifact()["abi"]).encode_abi(
            "grantRole", args=[role_id("MINTER_ROLE"), deployer.address]
        )
        # Addressed to the deployer: the token's address is not known yet, and has its length.
        signed = deployer.sign_transaction(
            fees | {"nonce": nonce + 1, "gas": GRANT_GAS, "to": deployer.address, "data": grant}
        )
        l1_fee += grants * l1_data_fee(w3, signed.raw_transaction)
    return DeployCost(
        deployer=deployer.address,
        balance_wei=balance,
        needed_wei=(deploy_gas + grants * GRANT_GAS) * max_fee + L1_FEE_MARGIN * l1_fee,
        grants=grants,
        max_fee_per_gas_wei=max_fee,
    )


@dataclass(frozen=True)
class MinterCheck:
    chain_id: int
    contract_address: str
    minter_address: str
    has_minter_role: bool
    gas_balance_wei: int
    paused: bool
    mint_with_ref: bool  # detected on the token (ERC-165)
    deposit_ref_problem: str = ""  # NTZS_MINT_WITH_REF unstated or contradicting the token

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.has_minter_role:
            found.append(f"minter {self.minter_address} does not hold MINTER_ROLE")
        if self.gas_balance_wei < settings.MINTER_MIN_GAS_WEI:
            found.append(
                f"minter gas balance {self.gas_balance_wei} wei is below MINTER_MIN_GAS_ETH"
            )
        if self.paused:
            found.append("the token is paused")
        if self.deposit_ref_problem:
            found.append(self.deposit_ref_problem)
        return found


def _deposit_ref_problem(client: NtzsClient) -> str:
    """The worker's own policy check (it refuses to sign on the same condition)."""
    try:
        mint_with_ref_policy(lambda: client, require_agreement=True)
    except ChainUnavailable:
        raise
    except ChainError as exc:
        return str(exc).rstrip(".")
    return ""


def _minter_read(client: NtzsClient, minter: str) -> MinterCheck:
    return MinterCheck(
        chain_id=settings.CHAIN_ID,
        contract_address=client.address,
        minter_address=minter,
        has_minter_role=client.has_role("MINTER_ROLE", minter),
        gas_balance_wei=client.w3.eth.get_balance(minter),
        paused=client.paused(),
        mint_with_ref=client.supports_deposit_ref,
        deposit_ref_problem=_deposit_ref_problem(client),
    )


ALERT_KINDS = {
    "chain": "minter chain unreachable or wrong",
    "role": "minter role missing",
    "gas": "minter gas low",
    "paused": "token paused",
    "deposit_ref": "deposit reference setting wrong",
}


def minter_read() -> MinterCheck:
    """A live read of the minter's state that writes nothing and moves no alert (the
    operator's ``healthcheck`` command). Raises ChainError when it cannot be read."""
    if not settings.MINTER_PRIVATE_KEY:
        raise ChainError("MINTER_PRIVATE_KEY is not set.")
    return _minter_read(ntzs_from_settings(), account_address(settings.MINTER_PRIVATE_KEY))


def minter_check() -> MinterCheck | None:
    """Chain id, contract code, minter role, gas and paused; opens or resolves one alert
    per condition, so an operator hears of a change once (``minting.tasks.check_minter``),
    and stores the result for the health pages (``MinterCheckRecord``)."""
    if not settings.MINTER_PRIVATE_KEY:
        alert_raise(kind=ALERT_KINDS["chain"], detail="MINTER_PRIVATE_KEY is not set.")
        _minter_record_store(result=None, error="MINTER_PRIVATE_KEY is not set.")
        return None
    minter = account_address(settings.MINTER_PRIVATE_KEY)
    try:
        result = _minter_read(ntzs_from_settings(), minter)
    except ChainError as exc:
        alert_raise(kind=ALERT_KINDS["chain"], detail=str(exc))
        _minter_record_store(result=None, error=str(exc))
        return None
    alert_resolve(kind=ALERT_KINDS["chain"])
    conditions = {
        "role": (not result.has_minter_role, f"{minter} lacks MINTER_ROLE"),
        "gas": (
            result.gas_balance_wei < settings.MINTER_MIN_GAS_WEI,
            f"{minter} holds {result.gas_balance_wei} wei",
        ),
        "paused": (result.paused, f"token {result.contract_address} is paused"),
        "deposit_ref": (bool(result.deposit_ref_problem), result.deposit_ref_problem),
    }
    for name, (present, detail) in conditions.items():
        if present:
            alert_raise(kind=ALERT_KINDS[name], detail=detail)
        else:
            alert_resolve(kind=ALERT_KINDS[name])
    _minter_record_store(result=result, error="")
    return result


def _minter_record_store(*, result: MinterCheck | None, error: str) -> None:
    fields = {
        "checked_at": now(),
        "reachable": result is not None,
        "error": error[:2000],
        "chain_id": settings.CHAIN_ID,
        "contract_address": "",
        "minter_address": "",
        "has_minter_role": False,
        "gas_balance_wei": None,
        "paused": False,
        "problems": ["chain unavailable"],
    }
    if result is not None:
        fields.update(
            chain_id=result.chain_id,
            contract_address=result.contract_address,
            minter_address=result.minter_address,
            has_minter_role=result.has_minter_role,
            gas_balance_wei=result.gas_balance_wei,
            paused=result.paused,
            problems=result.problems,
        )
    MinterCheckRecord.objects.update_or_create(name="minter", defaults=fields)
