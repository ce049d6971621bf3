"""The pipeline through an RPC outage: the shared breaker opens, nothing fails, nothing is
minted twice; the backup RPC keeps minting when the primary dies; a wrong chain signs
nothing."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import pytest

from core.models import Alert
from deposits.models import DepositRequest
from minting.breaker import rpc_breaker
from minting.models import MintAttempt, TokenDeployment
from minting.rpc import rpc_backup_verifications_forget
from minting.services.runner import confirm_run, mint_jobs_run
from tests.support.anvil import AnvilNode
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def proxied(minting, settings):
    """Primary RPC through a proxy we can kill; the deployment recorded for the backup."""
    block = minting.w3.eth.get_block(minting.deploy_block)
    TokenDeployment.objects.create(
        chain_id=31337,
        contract_address=minting.address,
        deploy_block=minting.deploy_block,
        deploy_block_hash="0x" + bytes(block["hash"]).hex(),
        tx_hash="0x" + "00" * 32,
        deployer_address=minting.admin_address,
    )
    proxy = TcpProxy(urlparse(minting.url).port)
    settings.BASE_SEPOLIA_RPC_URL = proxy.url
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    settings.NTZS_DEPLOY_BLOCK = minting.deploy_block
    settings.CIRCUIT_OPEN_S = 0
    rpc_breaker().reset()
    rpc_backup_verifications_forget()
    yield proxy
    proxy.stop()
    rpc_breaker().reset()
    rpc_backup_verifications_forget()


def _statuses():
    return set(DepositRequest.objects.values_list("status", flat=True))


@pytest.mark.django_db
def test_an_outage_opens_the_breaker_fails_nothing_and_the_queue_drains_after(
    paid_deposit, minting, proxied, caplog, settings
):
    deposits = [paid_deposit(1_000 + i) for i in range(3)]
    settings.CIRCUIT_OPEN_S = 30
    proxied.stop()
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            mint_jobs_run()
        assert rpc_breaker().state() == "open"
        assert mint_jobs_run() == {"delayed": 1}
    assert "Circuit breaker OPEN, delaying batch" in caplog.text
    settings.CIRCUIT_OPEN_S = 0
    assert _statuses() == {"mint_pending"} and MintAttempt.objects.count() == 0
    proxied.start()
    with caplog.at_level(logging.INFO):
        mint_jobs_run()  # the half-open trial (CIRCUIT_OPEN_S=0) succeeds
        confirm_run()
    assert "Circuit breaker HALF_OPEN" in caplog.text and "Circuit breaker CLOSED" in caplog.text
    assert rpc_breaker().state() == "closed"
    assert _statuses() == {"minted"}
    assert (
        minting.contract.functions.totalSupply().call()
        == sum(d.amount_tzs for d in deposits) * 10**18
    )


@pytest.mark.django_db
def test_primary_dead_backup_alive_keeps_minting(paid_deposit, minting, proxied, settings):
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = minting.url
    deposit = paid_deposit()
    proxied.stop()
    mint_jobs_run()
    confirm_run()
    deposit.refresh_from_db()
    assert deposit.status == "minted"


@pytest.mark.django_db
def test_a_backup_on_another_chain_signs_nothing_and_alerts(
    paid_deposit, minting, proxied, settings
):
    other = AnvilNode(chain_id=84532)
    try:
        settings.BASE_SEPOLIA_RPC_URL_BACKUP = other.url
        paid_deposit()
        proxied.stop()
        mint_jobs_run()
    finally:
        other.stop()
    assert MintAttempt.objects.count() == 0
    assert _statuses() == {"mint_pending"}
    assert Alert.objects.filter(kind="backup rpc rejected", resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_node_with_another_chain_id_signs_nothing(paid_deposit, minting, settings):
    other = AnvilNode(chain_id=84532)
    try:
        settings.BASE_SEPOLIA_RPC_URL = other.url
        paid_deposit()
        result = mint_jobs_run()
    finally:
        other.stop()
    assert "CHAIN_ID is 31337" in str(result)
    assert MintAttempt.objects.count() == 0


@pytest.mark.django_db
def test_idle_pipeline_runs_leave_the_breaker_to_the_runs_that_reach_the_chain(
    minting, proxied, settings
):
    """Nothing to mint while the node is down: the confirm runs fail, and the pipeline runs
    between them, which ask the chain nothing, neither reset the count nor take the trial."""
    settings.CIRCUIT_OPEN_S = 30
    proxied.stop()
    for _ in range(5):
        assert mint_jobs_run() == {"idle": 1}
        assert confirm_run()["delayed"] == 1
    assert rpc_breaker().state() == "open"
    assert mint_jobs_run() == {"idle": 1}
    assert rpc_breaker().state() == "open"
