"""The compiled NTZS contract (minting/contracts/NTZS.json) and its deposit-reference helpers.

Kept free of Django so that chain tooling and the contract tests can import it on their own.
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils import function_signature_to_4byte_selector, keccak

NTZS_ARTIFACT_PATH = Path(__file__).resolve().parent / "contracts" / "NTZS.json"

DEPOSIT_REF_FUNCTIONS = (
    "mintForDeposit(address,uint256,bytes32)",
    "isDepositMinted(bytes32)",
    "voidDepositRef(bytes32)",
)
DEPOSIT_REF_PREFIX = b"ntzs:deposit:"


@cache
def load_ntzs_artifact() -> dict[str, Any]:
    with NTZS_ARTIFACT_PATH.open(encoding="utf-8") as artifact_file:
        return json.load(artifact_file)


def _xor_selectors(signatures: tuple[str, ...]) -> bytes:
    # ERC-165: an interface id is the XOR of its function selectors.
    interface_id = 0
    for signature in signatures:
        interface_id ^= int.from_bytes(function_signature_to_4byte_selector(signature), "big")
    return interface_id.to_bytes(4, "big")


NTZS_ABI: list[dict[str, Any]] = load_ntzs_artifact()["abi"]
DEPOSIT_REF_INTERFACE_ID: bytes = _xor_selectors(DEPOSIT_REF_FUNCTIONS)


def deposit_ref(deposit_id: uuid.UUID) -> bytes:
    """The on-chain `depositRef` of a deposit: keccak256("ntzs:deposit:" || 16 UUID bytes)."""
    return keccak(DEPOSIT_REF_PREFIX + deposit_id.bytes)
