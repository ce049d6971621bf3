"""Building and signing mint transactions (no network here: the chain client sends)."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_utils import to_checksum_address
from web3 import Web3

from minting.chain import hex_str
from minting.contract_artifact import NTZS_ABI

# A constant gas limit for a mint: measured at ~75k for mintForDeposit to a fresh holder
# (anvil, prague); generous so a new holder's storage slot never runs out of gas.
MINT_GAS_LIMIT = 150_000
FILL_GAS_LIMIT = 21_000


def mint_gas_limit() -> int:
    from django.conf import settings

    return getattr(settings, "MINT_GAS_LIMIT", MINT_GAS_LIMIT)


_calldata_contract = Web3().eth.contract(abi=NTZS_ABI)


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def bumped(self, *, base_fee: int) -> Fees:
        """DESIGN §7.4: max fee ≥ max(1.125 × previous, 2 × base fee + tip), tip ≥ 1.125 ×
        previous (integer wei, rounded up so a node's "replacement underpriced" check passes)."""
        tip = -(-self.max_priority_fee_per_gas * 1125 // 1000) + 1
        max_fee = max(-(-self.max_fee_per_gas * 1125 // 1000) + 1, 2 * base_fee + tip)
        return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)


def fees_from(*, base_fee: int, tip: int) -> Fees:
    tip = max(tip, 1)
    return Fees(max_fee_per_gas=2 * base_fee + tip, max_priority_fee_per_gas=tip)


def mint_calldata(*, to: str, amount_units: int, deposit_ref: bytes | None) -> bytes:
    to = to_checksum_address(to)
    if deposit_ref is None:
        data = _calldata_contract.encode_abi("mint", args=[to, amount_units])
    else:
        data = _calldata_contract.encode_abi("mintForDeposit", args=[to, amount_units, deposit_ref])
    return bytes.fromhex(data[2:])


@dataclass(frozen=True)
class SignedTx:
    raw_hex: str
    tx_hash: str


def sign(
    *,
    private_key: str,
    chain_id: int,
    nonce: int,
    to: str,
    data: bytes,
    gas: int,
    fees: Fees,
    value: int = 0,
) -> SignedTx:
    signed = Account.sign_transaction(
        {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": to_checksum_address(to),
            "data": data,
            "value": value,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        },
        private_key,
    )
    return SignedTx(raw_hex=hex_str(signed.raw_transaction), tx_hash=hex_str(signed.hash))
