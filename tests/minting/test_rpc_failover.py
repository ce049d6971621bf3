"""RPC failover to a verified backup, and read retries (DESIGN §7.6), against real anvil nodes.

The primary is a TCP proxy in front of the session's anvil (stopped to simulate an outage);
the backup is the same anvil reached directly, or another anvil that must be refused."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest
import requests
from eth_account import Account

from core.models import Alert
from minting.chain import ChainUnavailable, NtzsClient, WrongChain, redact_url
from minting.contract_artifact import deposit_ref
from minting.models import TokenDeployment
from minting.rpc import (
    BACKUP_REJECTED_ALERT,
    rpc_backup_verifications_forget,
    rpc_connect,
    rpc_read,
)
from tests.support.anvil import DEV_ADDRESSES, AnvilNode, free_loopback_port
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db

PRIMARY_KEY = "PRIMARY-FAKE-KEY-7f3a"
BACKUP_KEY = "BACKUP-FAKE-KEY-91c2"
RECIPIENT = DEV_ADDRESSES[6]


@pytest.fixture(autouse=True)
def _fresh_process():
    rpc_backup_verifications_forget()  # each test is a new worker process
    yield
    rpc_backup_verifications_forget()


@pytest.fixture
def proxy(anvil_node):
    with TcpProxy(anvil_node.port) as running:
        yield running


@pytest.fixture
def other_nodes():
    """Start extra anvil nodes; all stopped at the end of the test."""
    started: list[AnvilNode] = []

    def start(**options) -> AnvilNode:
        started.append(AnvilNode(**options))
        return started[-1]

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def recorded_deployment(chain):
    """The TokenDeployment row deploy_ntzs would have written for the session's token."""
    block = chain.node.rpc("eth_getBlockByNumber", hex(chain.deploy_block), False)
    return TokenDeployment.objects.create(
        chain_id=31337,
        contract_address=chain.address,
        deploy_block=chain.deploy_block,
        deploy_block_hash=block["hash"],
        tx_hash=block["transactions"][0],
        deployer_address=chain.admin_address,
    )


@pytest.fixture
def failover(chain_settings, settings, proxy, anvil_node, recorded_deployment):
    settings.BASE_SEPOLIA_RPC_URL = proxy.url
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = anvil_node.url
    settings.NTZS_DEPLOY_BLOCK = chain_settings.deploy_block
    return chain_settings


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG, logger="minting")
    caplog.set_level(logging.DEBUG, logger="web3")
    caplog.set_level(logging.INFO, logger="core")
    return caplog


def messages(caplog, logger: str = "minting.rpc") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def mint_to_recipient(chain, amount_tzs: int) -> None:
    chain.transact(
        chain.minter_key,
        chain.contract.functions.mintForDeposit(
            RECIPIENT, amount_tzs * 10**18, deposit_ref(uuid.uuid4())
        ),
    )


def signed_transfer(chain) -> bytes:
    """A transaction the minter could send on any 31337 chain where it has no history."""
    tx = {
        "to": DEV_ADDRESSES[7],
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 1,
        "nonce": 0,
        "chainId": 31337,
        "type": 2,
    }
    return Account.sign_transaction(tx, chain.minter_key).raw_transaction


def open_alerts() -> list[Alert]:
    return list(Alert.objects.filter(kind=BACKUP_REJECTED_ALERT, resolved_at__isnull=True))


def test_reads_use_the_primary_while_it_answers(failover, proxy, logs):
    mint_to_recipient(failover, 1_000)

    client = NtzsClient(rpc_connect(), failover.address)

    assert client.balance_of(RECIPIENT) == 1_000 * 10**18
    assert proxy.connections_accepted >= 1
    assert not any("backup" in m.lower() for m in messages(logs))


def test_reads_go_through_the_verified_backup_when_the_primary_is_down(failover, proxy, logs):
    mint_to_recipient(failover, 5_000)
    proxy.stop()

    client = NtzsClient(rpc_connect(), failover.address)

    assert client.balance_of(RECIPIENT) == 5_000 * 10**18
    assert client.total_supply() == 5_000 * 10**18
    assert (
        f"Primary RPC {proxy.url} failed (ConnectionError); using the backup RPC "
        f"{failover.url}" in messages(logs)
    )
    verified = [m for m in messages(logs) if m.startswith("Backup RPC")]
    assert verified == [
        f"Backup RPC {failover.url} verified: chain 31337, block "
        f"{failover.deploy_block} hash matches the NTZS deployment"
    ]
    assert open_alerts() == []


def test_the_backup_is_verified_once_per_process_and_again_when_its_url_changes(
    failover, proxy, settings, logs
):
    proxy.stop()
    rpc_connect().eth.get_block_number()
    rpc_connect().eth.get_block_number()
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = f"{failover.url}/?apikey={BACKUP_KEY}"
    rpc_connect().eth.get_block_number()

    assert sum(m.startswith("Backup RPC") for m in messages(logs)) == 2
    assert all(BACKUP_KEY not in m for m in messages(logs))


def test_a_json_rpc_batch_fails_over_too(failover, proxy):
    mint_to_recipient(failover, 2_000)
    proxy.stop()
    w3 = rpc_connect()
    token = NtzsClient(w3, failover.address).contract

    with w3.batch_requests() as batch:
        batch.add(token.functions.balanceOf(RECIPIENT))
        batch.add(token.functions.totalSupply())
        balance, supply = batch.execute()

    assert balance == supply == 2_000 * 10**18


def test_the_primary_is_used_again_once_it_is_back(failover, proxy, logs):
    w3 = rpc_connect(primary_retry_s=0)
    proxy.stop()
    assert w3.eth.chain_id == 31337  # through the backup
    accepted = proxy.connections_accepted

    proxy.start()

    assert w3.eth.chain_id == 31337
    assert proxy.connections_accepted == accepted + 1
    assert f"Primary RPC {proxy.url} answers again; leaving the backup" in messages(logs)


def test_a_primary_answering_http_503_fails_over(failover, proxy, logs):
    mint_to_recipient(failover, 3_000)
    proxy.set_mode("http_503")

    assert NtzsClient(rpc_connect(), failover.address).balance_of(RECIPIENT) == 3_000 * 10**18
    assert any(m.startswith(f"Primary RPC {proxy.url} failed (HTTP 503)") for m in messages(logs))


def test_a_primary_that_does_not_answer_in_time_fails_over(failover, proxy, logs):
    proxy.set_mode("hang")

    assert rpc_connect(timeout_s=0.3).eth.chain_id == 31337
    assert any(
        m.startswith(f"Primary RPC {proxy.url} failed (no answer within 0.3 s)")
        for m in messages(logs)
    )


def test_a_backup_on_another_chain_id_is_refused_and_nothing_is_sent(
    failover, proxy, settings, other_nodes, logs
):
    other = other_nodes(chain_id=84532)
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = f"{other.url}/?apikey={BACKUP_KEY}"
    proxy.stop()
    w3 = rpc_connect()

    with pytest.raises(WrongChain) as refused:
        w3.eth.send_raw_transaction(signed_transfer(failover))

    assert str(refused.value) == (
        f"The backup RPC node at {other.url} is chain 84532, but "
        "CHAIN_ID is 31337; it is never used."
    )
    [alert] = open_alerts()
    assert (alert.key, alert.detail) == (other.url, str(refused.value))
    assert other.rpc("eth_blockNumber") == "0x0"
    assert other.rpc("eth_getTransactionCount", failover.minter_address, "pending") == "0x0"
    assert failover.node.rpc("eth_getTransactionCount", failover.minter_address, "pending") == "0x0"
    with pytest.raises(WrongChain):
        NtzsClient(w3, failover.address).balance_of(RECIPIENT)
    assert len(open_alerts()) == 1  # touched, not opened twice
    assert all(BACKUP_KEY not in text for text in logs.messages + [alert.detail])


@pytest.mark.parametrize(
    ("mined_blocks", "reason"),
    [
        (True, "has hash 0x"),
        (False, "has no block"),
    ],
    ids=["same-height-other-history", "shorter-chain"],
)
def test_a_backup_with_the_same_chain_id_but_another_history_is_refused(
    failover, proxy, settings, other_nodes, mined_blocks, reason
):
    other = other_nodes()  # also chain 31337, and the minter has money and nonce 0 there
    if mined_blocks:
        other.rpc("anvil_mine", hex(failover.deploy_block))
    height = other.rpc("eth_blockNumber")
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = other.url
    proxy.stop()

    with pytest.raises(WrongChain, match=f"at {other.url} {reason}.*never used") as refused:
        rpc_connect().eth.send_raw_transaction(signed_transfer(failover))

    assert [a.detail for a in open_alerts()] == [str(refused.value)]
    assert other.rpc("eth_getTransactionCount", failover.minter_address, "pending") == "0x0"
    assert other.rpc("eth_blockNumber") == height


def test_a_backup_cannot_be_verified_without_a_recorded_deployment(failover, proxy):
    TokenDeployment.objects.all().delete()
    proxy.stop()

    with pytest.raises(WrongChain, match="no deployment of NTZS .* is recorded"):
        rpc_connect().eth.get_block_number()
    assert len(open_alerts()) == 1


def test_without_a_backup_a_primary_outage_is_chain_unavailable(failover, proxy, settings):
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    proxy.stop()

    with pytest.raises(ChainUnavailable, match="no BASE_SEPOLIA_RPC_URL_BACKUP is configured"):
        NtzsClient(rpc_connect(), failover.address).total_supply()


def test_rpc_url_secrets_never_reach_errors_or_logs(failover, proxy, settings, logs):
    dead_port = free_loopback_port()
    settings.BASE_SEPOLIA_RPC_URL = f"{proxy.url}/v2/{PRIMARY_KEY}"
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = f"http://127.0.0.1:{dead_port}/v3/{BACKUP_KEY}"
    proxy.stop()

    with pytest.raises(ChainUnavailable) as both_down:
        rpc_read(lambda: rpc_connect().eth.chain_id, backoff_s=(0, 0))
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    with pytest.raises(ChainUnavailable) as no_backup:
        rpc_connect().eth.get_block_number()
    with pytest.raises(ChainUnavailable) as raw_requests:
        rpc_read(lambda: requests.post(settings.BASE_SEPOLIA_RPC_URL, timeout=1), backoff_s=(0,))

    texts = [str(both_down.value), str(no_backup.value), str(raw_requests.value)]
    texts += logs.messages
    assert all(PRIMARY_KEY not in t and BACKUP_KEY not in t for t in texts)
    assert str(both_down.value) == (
        f"Neither the primary RPC {proxy.url} (ConnectionError) nor the backup RPC "
        f"http://127.0.0.1:{dead_port} (no answer to its verification) answered."
    )
    assert redact_url(settings.BASE_SEPOLIA_RPC_URL) == proxy.url


def test_rpc_read_retries_an_outage_until_the_node_is_back(failover, proxy, settings, logs):
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    mint_to_recipient(failover, 4_000)
    client = NtzsClient(rpc_connect(), failover.address)
    proxy.stop()
    restart = threading.Timer(0.1, proxy.start)
    restart.start()

    assert rpc_read(lambda: client.balance_of(RECIPIENT)) == 4_000 * 10**18
    restart.join()
    retries = [m for m in messages(logs) if m.startswith("RPC read failed")]
    assert retries[0] == "RPC read failed (ChainUnavailable), attempt 1 of 3; retrying in 0.2 s"


def test_rpc_read_gives_up_after_its_attempts(logs):
    calls = []

    def unreachable():
        calls.append(1)
        raise ChainUnavailable("The node did not answer.")

    with pytest.raises(ChainUnavailable, match="The node did not answer."):
        rpc_read(unreachable, attempts=3, backoff_s=(0, 0))
    assert len(calls) == 3
    assert len([m for m in messages(logs) if m.startswith("RPC read failed")]) == 2


@pytest.mark.parametrize("error", [WrongChain("The node is chain 1."), ValueError("reverted")])
def test_rpc_read_does_not_retry_what_a_retry_cannot_cure(error):
    calls = []

    def refused():
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        rpc_read(refused, backoff_s=(0, 0))
    assert len(calls) == 1
