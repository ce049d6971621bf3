"""Building and signing mint transactions (no network here: the chain client sends)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from eth_abi import encode
from eth_account import Account
from eth_utils import to_checksum_address

from minting.chain import hex_str, token_function

# A constant gas limit for a mint: measured at ~75k for mintForDeposit to a fresh holder
# (anvil, prague); generous so a new holder's storage slot never runs out of gas.
MINT_GAS_LIMIT = 150_000
FILL_GAS_LIMIT = 21_000


def mint_gas_limit() -> int:
    return getattr(settings, "MINT_GAS_LIMIT", MINT_GAS_LIMIT)


# New signatures offer this many times the next block's base fee, plus the tip: the most a
# transaction pays is the base fee of its block plus the tip, so the headroom costs nothing
# but it keeps the transaction includable while the base fee climbs. Base's EIP-1559
# parameters (a denominator of 125 since February 2026, 250 before; elasticity 6) let the base
# fee grow by a few percent a block at most: about 3x over the 30 blocks (60 s) of
# MINT_FEE_BUMP_AFTER_S, so a transaction signed now is still includable when a bump is due.
# (Ethereum L1 grows 12.5 % a block: this headroom would cover only ~12 blocks there.)
BASE_FEE_HEADROOM = 4
# A replacement must raise both the max fee and the tip by at least 10 % (geth's and op-geth's
# pool price bump); 12.5 %, rounded up, always passes.
BUMP_NUMERATOR, BUMP_DENOMINATOR = 1125, 1000


def _bump(value: int) -> int:
    return -(-value * BUMP_NUMERATOR // BUMP_DENOMINATOR) + 1


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def effective_tip(self, *, base_fee: int) -> int:
        """What a block with this base fee would pay the sequencer (negative: excluded)."""
        return min(self.max_priority_fee_per_gas, self.max_fee_per_gas - base_fee)

    def underpriced(self, *, base_fee: int, tip: int) -> bool:
        """Whether these fees cannot win a place in the next block: its base fee leaves them
        less than the tip the node asks for now (a base-fee spike, or a busier market)."""
        return self.effective_tip(base_fee=base_fee) < max(tip, 1)


@dataclass(frozen=True)
class FeeQuote:
    """Fees for a signature, and whether ``MINT_MAX_FEE_PER_GAS_WEI`` limited them."""

    fees: Fees
    capped: bool  # the cap cut the fees the market asked for
    wanted_max_fee: int  # what the market asked for, before the cap

    def replaces(self, previous: Fees) -> bool:
        """Whether a node accepts these fees as a replacement of ``previous``."""
        return self.fees.max_fee_per_gas >= _bump(
            previous.max_fee_per_gas
        ) and self.fees.max_priority_fee_per_gas >= _bump(previous.max_priority_fee_per_gas)


def _capped(max_fee: int, tip: int, *, cap: int) -> FeeQuote:
    fees = Fees(max_fee_per_gas=min(max_fee, cap), max_priority_fee_per_gas=min(tip, cap))
    return FeeQuote(fees=fees, capped=max_fee > cap, wanted_max_fee=max_fee)


def fees_quote(*, base_fee: int, tip: int, cap: int) -> FeeQuote:
    """A new signature: max fee = BASE_FEE_HEADROOM x the next block's base fee + tip, never
    above ``cap`` (MINT_MAX_FEE_PER_GAS_WEI)."""
    tip = max(tip, 1)
    return _capped(BASE_FEE_HEADROOM * base_fee + tip, tip, cap=cap)


def fees_bumped(previous: Fees, *, base_fee: int, tip: int, cap: int) -> FeeQuote:
    """A fee bump (DESIGN §7.4): max fee >= max(1.125 x previous, BASE_FEE_HEADROOM x base fee
    + tip), tip >= max(1.125 x previous, the tip asked now), integer wei rounded up so a
    node's "replacement underpriced" check passes; never above ``cap``. A quote that the cap
    keeps from ``replaces(previous)`` must not be sent: the node would refuse it."""
    new_tip = max(_bump(previous.max_priority_fee_per_gas), tip, 1)
    max_fee = max(_bump(previous.max_fee_per_gas), BASE_FEE_HEADROOM * base_fee + new_tip)
    return _capped(max_fee, new_tip, cap=cap)


def fees_from(*, base_fee: int, tip: int) -> Fees:
    """Uncapped new-signature fees (the cap is applied by ``fees_quote``)."""
    tip = max(tip, 1)
    return Fees(max_fee_per_gas=BASE_FEE_HEADROOM * base_fee + tip, max_priority_fee_per_gas=tip)


def mint_calldata(*, to: str, amount_units: int, deposit_ref: bytes | None) -> bytes:
    """``mint(to, amount)`` or ``mintForDeposit(to, amount, ref)``, ABI-encoded from the
    token's ABI (the selector and argument types of ``token_function``): web3's contract
    encoder resolves the ABI element on every call, milliseconds of CPU per mint that a
    batch of hundreds pays in seconds on a busy machine."""
    to = to_checksum_address(to)
    if deposit_ref is None:
        fn, args = token_function("mint"), (to, amount_units)
    else:
        fn, args = token_function("mintForDeposit"), (to, amount_units, deposit_ref)
    return fn.selector + encode(fn.inputs, args)


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
