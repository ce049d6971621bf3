"""Against a token without deposit references (like the one already on Base Sepolia) the
pipeline detects it and mints with plain ``mint``; the off-chain guarantees carry the whole
weight. Stating the opposite in NTZS_MINT_WITH_REF stops the worker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deposits.models import DepositRequest
from minting.models import MintLogClaim, MintTransaction
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from tests.support.chain_fixtures import role_id, transact

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "support" / "contracts" / "LegacyNTZS.sol"


@pytest.fixture(scope="session")
def legacy_artifact(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("legacy") / "LegacyNTZS.json"
    subprocess.run(
        [
            "node",
            str(REPO / "minting" / "contracts" / "compile.js"),
            "--source",
            str(SOURCE),
            "--contract",
            "LegacyNTZS",
            "--artifact",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return json.loads(out.read_text())


@pytest.fixture
def legacy_token(minting, legacy_artifact, settings):
    w3 = minting.w3
    factory = w3.eth.contract(abi=legacy_artifact["abi"], bytecode=legacy_artifact["bytecode"])
    receipt = transact(w3, minting.admin_key, factory.constructor(minting.admin_address))
    token = w3.eth.contract(address=receipt["contractAddress"], abi=legacy_artifact["abi"])
    transact(
        w3,
        minting.admin_key,
        token.functions.grantRole(role_id("MINTER_ROLE"), minting.minter_address),
    )
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = token.address
    return token


@pytest.mark.django_db
def test_a_token_without_deposit_references_gets_plain_mints(paid_deposit, legacy_token):
    deposit = paid_deposit(5_000)
    result = mint_jobs_process(client_factory=mint_client)
    assert result.signed == 1
    mints_confirm(client_factory=mint_client)
    deposit.refresh_from_db()
    assert deposit.status == DepositRequest.Status.MINTED
    assert MintTransaction.objects.get(deposit=deposit).uses_deposit_ref is False
    assert legacy_token.functions.totalSupply().call() == 5_000 * 10**18
    assert MintLogClaim.objects.get(deposit=deposit).tx_hash == deposit.mint_tx_hash


@pytest.mark.django_db
def test_stating_deposit_references_for_a_token_without_them_stops_the_worker(
    paid_deposit, legacy_token, settings
):
    settings.NTZS_MINT_WITH_REF = True
    deposit = paid_deposit()
    result = mint_jobs_process(client_factory=mint_client)
    assert "NTZS_MINT_WITH_REF=True contradicts the token" in result.preflight_reason
    deposit.refresh_from_db()
    assert deposit.status == "mint_pending"
