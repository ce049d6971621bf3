"""The committed NTZS.json is what NTZS.sol compiles to, and it is what runs on chain."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

from eth_utils import function_signature_to_4byte_selector, keccak

from minting.contract_artifact import (
    DEPOSIT_REF_INTERFACE_ID,
    NTZS_ABI,
    NTZS_ARTIFACT_PATH,
    deposit_ref,
    load_ntzs_artifact,
)
from tests.support.chain_fixtures import NtzsDeployment

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPILE_SCRIPT = REPO_ROOT / "minting" / "contracts" / "compile.js"


def run_compile(*args: str) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is required to check the contract artifact"
    return subprocess.run(
        [node, str(COMPILE_SCRIPT), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_committed_artifact_matches_the_source() -> None:
    result = run_compile("--check")
    assert result.returncode == 0, result.stderr


def test_check_detects_a_tampered_artifact(tmp_path: Path) -> None:
    artifact = json.loads(NTZS_ARTIFACT_PATH.read_text())
    artifact["bytecode"] = artifact["bytecode"][:-2] + "00"
    tampered = tmp_path / "NTZS.json"
    tampered.write_text(json.dumps(artifact, indent=2, sort_keys=True) + "\n")

    result = run_compile("--check", "--artifact", str(tampered))

    assert result.returncode == 1
    assert "out of date" in result.stderr


def test_artifact_shape() -> None:
    artifact = load_ntzs_artifact()
    assert list(artifact) == [
        "abi",
        "bytecode",
        "compiler",
        "contractName",
        "deployedBytecode",
        "sourceSha256",
    ]
    assert artifact["contractName"] == "NTZS"
    assert artifact["compiler"].startswith("0.8.30+")
    assert artifact["bytecode"].startswith("0x") and artifact["deployedBytecode"].startswith("0x")
    assert NTZS_ABI == artifact["abi"]


def test_deployed_code_is_the_artifact(ntzs_deployment: NtzsDeployment) -> None:
    code = ntzs_deployment.w3.eth.get_code(ntzs_deployment.address)
    assert code.to_0x_hex() == load_ntzs_artifact()["deployedBytecode"]


def test_deposit_ref_helpers() -> None:
    deposit_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert deposit_ref(deposit_id) == keccak(b"ntzs:deposit:" + deposit_id.bytes)
    assert len(deposit_ref(deposit_id)) == 32
    selectors = [
        int.from_bytes(function_signature_to_4byte_selector(signature), "big")
        for signature in (
            "mintForDeposit(address,uint256,bytes32)",
            "isDepositMinted(bytes32)",
            "voidDepositRef(bytes32)",
        )
    ]
    expected = selectors[0] ^ selectors[1] ^ selectors[2]
    assert DEPOSIT_REF_INTERFACE_ID == expected.to_bytes(4, "big")
