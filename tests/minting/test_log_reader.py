"""Bounded log reads (DESIGN §7.4, issue 10 item 6): every eth_getLogs goes through the chain
client's one ranged reader — at most MINT_LOGS_MAX_RANGE blocks a call, halved when the
provider says the range is too large, all or nothing — from a recorded lower bound. Run
through the Base-like proxy with its 2,000-block getLogs limit, on a chain mined
PAST_DEPLOYMENT blocks past the token's deployment (at a 0-second interval, so chain time
stays in the UTC day).

The long chain is an anvil of its own at the Cancun hardfork with ``--prune-history``: under
anvil 1.7's default (Prague, every block's state kept and written to
~/.foundry/anvil/tmp) each ``anvil_mine``d block costs more the longer the chain — 15,000
blocks took 100-145 s here and 50,000 would take about 20 minutes and tens of GB of disk —
while Cancun without kept states mines 15,000 blocks in under a second. Nothing here reads an
old block's state (log reads read blocks and receipts), and the token is the same bytecode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from web3.exceptions import Web3RPCError

from core.services import dual_control_approve
from minting.chain import (
    TRANSFER_TOPIC,
    ChainUnavailable,
    NtzsClient,
    hex_str,
    range_too_large,
    role_id,
    web3_connect,
)
from minting.contract_artifact import deposit_ref
from minting.models import MintLogClaim, MintTransaction, SafeBatchExport
from minting.services.lanes import SafePayloadLive, mint_route_to_worker, safe_nonce_consumed_record
from minting.services.pipeline import mint_jobs_process
from minting.services.recording import LOGS_REORG_MARGIN, logs_from_block
from minting.services.runner import mint_client, mint_jobs_run
from minting.services.safe import ChainReadRefused, safe_batch_file
from tests.minting.test_lanes import safe_cancel, safe_nonce, status_of
from tests.minting.test_safe_record import safe_mint
from tests.support.anvil import AnvilNode
from tests.support.base_proxy import BaseProxy
from tests.support.chain_fixtures import (
    SUPPORTED_SAFE_VERSIONS,
    LocalSafe,
    NtzsDeployment,
    deploy_local_safe,
    deploy_ntzs,
)

UNITS = 10**18
PAST_DEPLOYMENT = 50_000
# See the module docstring: fast to mine, nothing persisted to disk.
LONG_CHAIN_ARGS = ("--hardfork", "cancun", "--prune-history")


def mine(chain, blocks: int) -> None:
    while blocks > 0:  # in calls of 5,000 blocks, each given a long timeout
        answer = requests.post(
            chain.url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "anvil_mine",
                "params": [hex(min(blocks, 5_000)), "0x0"],
            },
            timeout=300,
        ).json()
        assert "error" not in answer, answer
        blocks -= 5_000


def wallet_topic(address: str) -> str:
    return hex_str(bytes(12) + bytes.fromhex(address[2:]))


def direct_ref_mint(chain, deposit) -> dict:
    """The deposit's reference minted by the minter key outside the pipeline (what a worker
    that crashed after sending leaves on chain with nothing recorded)."""
    return chain.transact(
        chain.minter_key,
        chain.contract.functions.mintForDeposit(
            deposit.wallet.address, deposit.amount_tzs * UNITS, deposit_ref(deposit.pk)
        ),
    )


@dataclass(frozen=True)
class LongChain:
    chain: NtzsDeployment
    safe: LocalSafe
    proxy: BaseProxy


@pytest.fixture(scope="module")
def long_chain() -> Iterator[tuple[NtzsDeployment, LocalSafe]]:
    """An anvil of its own, with NTZS and a Safe deployed and then PAST_DEPLOYMENT empty
    blocks: mined once for the module, never touching the session's chain (a longer chain
    makes every later anvil_mine slower)."""
    node = AnvilNode(extra_args=LONG_CHAIN_ARGS)
    try:
        deployment = deploy_ntzs(node)
        safe = deploy_local_safe(node, SUPPORTED_SAFE_VERSIONS[-1])
        mine(deployment, PAST_DEPLOYMENT)
        yield deployment, safe
    finally:
        node.stop()


@pytest.fixture
def limited(long_chain, minting, settings) -> Iterator[LongChain]:
    """Django on the long chain through the Base-like proxy refusing getLogs over 2,000
    blocks; the reads' floor is the deploy block. Reverted after the test."""
    chain, safe = long_chain
    snapshot = chain.node.snapshot()
    proxy = BaseProxy(chain.url)
    proxy.logs_max_range = 2_000
    settings.BASE_SEPOLIA_RPC_URL = proxy.url
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = chain.address
    settings.MINTER_PRIVATE_KEY = chain.minter_key
    settings.NTZS_DEPLOY_BLOCK = chain.deploy_block
    settings.MINT_LOGS_MAX_RANGE = 2_000
    try:
        yield LongChain(chain, safe, proxy)
    finally:
        proxy.stop()
        chain.node.revert(snapshot)


def proxy_client(long: LongChain) -> NtzsClient:
    return NtzsClient(web3_connect(long.proxy.url), long.chain.address)


@pytest.mark.slow  # the long chain: about 6 s to build, 2-3 s a test
@pytest.mark.django_db
def test_the_reader_covers_thousands_of_blocks_in_ranges_the_provider_accepts(
    limited, paid_deposit
):
    chain, proxy = limited.chain, limited.proxy
    deposit = paid_deposit()
    landed = direct_ref_mint(chain, deposit)
    mine(chain, 300)

    logs = proxy_client(limited).logs_read(
        topics=[hex_str(TRANSFER_TOPIC), hex_str(bytes(32)), wallet_topic(deposit.wallet.address)],
        from_block=chain.deploy_block,
    )

    assert [(log["transactionHash"], log["blockNumber"]) for log in logs] == [
        (landed["transactionHash"], landed["blockNumber"])
    ]
    blocks = chain.w3.eth.block_number - chain.deploy_block + 1
    assert blocks > PAST_DEPLOYMENT
    assert proxy.refusals["logs_range"] == 0
    assert proxy.requests_seen["eth_getLogs"] == -(-blocks // 2_000)


@pytest.mark.slow  # the long chain: about 6 s to build, 2-3 s a test
@pytest.mark.django_db
def test_a_range_the_provider_calls_too_large_is_halved_until_it_is_accepted(
    limited, paid_deposit, settings
):
    chain, proxy = limited.chain, limited.proxy
    settings.MINT_LOGS_MAX_RANGE = 10_000  # wider than the provider allows
    deposit = paid_deposit()
    landed = direct_ref_mint(chain, deposit)
    mine(chain, 300)

    logs = proxy_client(limited).logs_read(
        topics=[hex_str(TRANSFER_TOPIC), hex_str(bytes(32)), wallet_topic(deposit.wallet.address)],
        from_block=chain.deploy_block,
    )

    assert [log["transactionHash"] for log in logs] == [landed["transactionHash"]]
    refused = proxy.refusals["logs_range"]  # e.g. 6,300 -> 3,150 -> 1,575 blocks
    assert refused >= 1
    assert proxy.requests_seen["eth_getLogs"] > refused + PAST_DEPLOYMENT // 2_000


@pytest.mark.slow  # the long chain: about 6 s to build, 2-3 s a test
@pytest.mark.django_db
def test_a_read_with_one_failing_range_returns_nothing_but_chain_unavailable(limited, paid_deposit):
    chain = limited.chain
    deposit = paid_deposit()
    direct_ref_mint(chain, deposit)
    limited.proxy.logs_max_range = 0  # even one block is refused: halving cannot help

    with pytest.raises(ChainUnavailable, match="could not be read"):
        proxy_client(limited).logs_read(
            topics=[hex_str(TRANSFER_TOPIC)], from_block=chain.deploy_block
        )


@pytest.mark.slow  # the long chain: about 6 s to build, 2-3 s a test
@pytest.mark.django_db
def test_idempotency_resolution_reads_from_the_deploy_block_in_ranges(limited, paid_deposit):
    chain, proxy = limited.chain, limited.proxy
    deposit = paid_deposit()
    landed = direct_ref_mint(chain, deposit)
    mine(chain, 300)

    result = mint_jobs_process(client_factory=mint_client)

    assert (result.resolved, result.signed) == (1, 0)
    assert status_of(deposit) == "minted"
    claim = MintLogClaim.objects.get(deposit=deposit)
    assert claim.tx_hash == hex_str(landed["transactionHash"])
    assert proxy.refusals["logs_range"] == 0
    assert proxy.requests_seen["eth_getLogs"] > PAST_DEPLOYMENT // 2_000  # from deploy


@pytest.mark.slow  # the long chain: about 6 s to build, 2-3 s a test
@pytest.mark.django_db
def test_idempotency_resolution_waits_while_the_logs_cannot_be_read(limited, paid_deposit):
    chain, proxy = limited.chain, limited.proxy
    deposit = paid_deposit()
    direct_ref_mint(chain, deposit)
    proxy.logs_max_range = 0

    result = mint_jobs_run()  # no crash: the run is delayed, the breaker counts it

    assert result["delayed"] == 1 and "could not be read" in result["reason"]
    assert status_of(deposit) == "mint_pending"
    assert not MintTransaction.objects.filter(deposit=deposit).exists()
    proxy.logs_max_range = 2_000
    assert mint_jobs_process(client_factory=mint_client).resolved == 1
    assert status_of(deposit) == "minted"


@pytest.mark.django_db
def test_the_first_signature_records_the_head_read_before_it(minting, paid_deposit, settings):
    settings.NTZS_DEPLOY_BLOCK = minting.deploy_block
    deposit = paid_deposit()
    mine(minting, LOGS_REORG_MARGIN + 50)
    head = minting.w3.eth.block_number

    assert mint_jobs_process(client_factory=mint_client).signed == 1

    mint = MintTransaction.objects.get(deposit=deposit)
    assert mint.logs_from_block == head
    assert logs_from_block(deposit.pk) == head - LOGS_REORG_MARGIN


@pytest.mark.django_db
def test_a_row_without_a_recorded_head_reads_from_the_deploy_block(
    minting, paid_deposit, compliance, settings
):
    settings.NTZS_DEPLOY_BLOCK = minting.deploy_block
    deposit = paid_deposit(10_000)
    mine(minting, LOGS_REORG_MARGIN + 50)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    export = SafeBatchExport.objects.get(deposits=deposit)
    assert export.logs_from_block == minting.w3.eth.block_number
    assert logs_from_block(deposit.pk) == export.logs_from_block - LOGS_REORG_MARGIN

    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    SafeBatchExport.objects.filter(pk=export.pk).update(logs_from_block=None)  # an old export

    assert logs_from_block(deposit.pk) == minting.deploy_block


@pytest.mark.slow  # the long chain: about 6 s to build, 2-3 s a test
@pytest.mark.django_db
def test_an_executed_plain_safe_export_refuses_the_route_back_on_a_long_chain(
    limited, paid_deposit, compliance, compliance_two, superadmin, settings
):
    chain, safe, proxy = limited.chain, limited.safe, limited.proxy
    chain.transact(
        chain.admin_key, chain.contract.functions.grantRole(role_id("MINTER_ROLE"), safe.address)
    )
    settings.SAFE_ADDRESS = safe.address
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit(10_000)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance, safe_nonce=safe_nonce(chain, safe))
    assert SafeBatchExport.objects.get(deposits=deposit).logs_from_block > PAST_DEPLOYMENT
    minted = safe_mint(safe, chain, deposit, ref=False)  # the exported proposal executed
    request = safe_nonce_consumed_record(
        deposit_id=deposit.pk,
        tx_hash=safe_cancel(chain, safe),
        evidence="a later Safe transaction",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    mine(chain, 300)

    with pytest.raises(SafePayloadLive) as caught:
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")

    assert str(caught.value).startswith(
        f"An unrecorded mint of 10,000 TZS to this deposit's wallet is on chain ({minted}#"
    )
    assert status_of(deposit) == "mint_requires_safe"
    assert proxy.refusals["logs_range"] == 0

    # An export without a recorded head: the read starts at the deploy block, more than
    # PAST_DEPLOYMENT blocks back (several ranges), and still finds it.
    SafeBatchExport.objects.filter(deposits=deposit).update(logs_from_block=None)
    seen = proxy.requests_seen["eth_getLogs"]
    with pytest.raises(SafePayloadLive, match="An unrecorded mint of 10,000 TZS"):
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    assert proxy.requests_seen["eth_getLogs"] - seen > PAST_DEPLOYMENT // 2_000

    # A read that fails part-way is "try again", never a route-back.
    proxy.logs_max_range = 0
    with pytest.raises(ChainReadRefused, match="try again") as refused:
        mint_route_to_worker(deposit_id=deposit.pk, actor=superadmin, reason="back")
    assert "logs" in str(refused.value)
    assert status_of(deposit) == "mint_requires_safe"


@pytest.mark.parametrize(
    ("code", "message", "too_large"),
    [
        (-32005, "query exceeds max block range 2000", True),  # Base's proxies
        (
            -32602,
            "Log response size exceeded. You can make eth_getLogs requests with up to a "
            "2K block range",
            True,
        ),  # Alchemy
        (-32005, "query returned more than 10000 results", True),  # Infura
        (-32005, "daily request count exceeded, request rate limited", False),  # not a range
        (-32000, "header not found", False),
    ],
)
def test_only_a_refusal_about_the_range_is_halved(code, message, too_large):
    error = {"code": code, "message": message}
    refusal = Web3RPCError(str(error), rpc_response={"jsonrpc": "2.0", "id": 1, "error": error})
    assert range_too_large(refusal) is too_large
