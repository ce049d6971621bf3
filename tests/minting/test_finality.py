"""Finality (DESIGN §7.4, issue 10 item 7), on an anvil whose ``safe`` head lags ``latest``
(``--slots-in-an-epoch 4``): under MINT_CONFIRMATION_TAG=latest a recorded mint is re-checked
once the safe head passes it — gone after a reorg, the alert opens and sending stops; found
again at another log index, a superseding claim is appended (claims are never edited) and the
alert resolves. Under ``safe`` nothing is recorded before the safe head passes the mint."""

from __future__ import annotations

import pytest
from eth_account import Account

from core.models import Alert
from minting.chain import role_id
from minting.models import MintAttempt, MintLogClaim, MintTransaction, SignerAccount
from minting.services.confirm import mints_confirm, mints_finality_check
from minting.services.pipeline import mint_jobs_process
from minting.services.recording import NOT_ON_CHAIN, claim_current
from minting.services.runner import confirm_run, mint_client
from minting.services.safe import safe_mint_record
from tests.minting.test_lanes import status_of
from tests.minting.test_safe_record import (
    calldata,
    safe_exec,
    safe_fixture,  # noqa: F401 - the `safe` fixture
)
from tests.support.chain_fixtures import transact

UNITS = 10**18
GWEI = 10**9


@pytest.fixture
def lagging(lagging_chain, minting, settings):
    """Django pointed at the chain whose safe head lags, reverted after the test."""
    node = lagging_chain.node
    snapshot = node.snapshot()
    settings.BASE_SEPOLIA_RPC_URL = lagging_chain.url
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = lagging_chain.address
    settings.MINTER_PRIVATE_KEY = lagging_chain.minter_key
    settings.NTZS_DEPLOY_BLOCK = lagging_chain.deploy_block
    yield lagging_chain
    node.rpc("evm_setAutomine", True)
    node.revert(snapshot)


def mine(chain, blocks: int = 1) -> None:
    chain.node.rpc("anvil_mine", hex(blocks), "0x0")


def safe_head(chain) -> int:
    return chain.w3.eth.get_block("safe")["number"]


def open_alerts() -> list[Alert]:
    return list(Alert.objects.filter(kind=NOT_ON_CHAIN, resolved_at__isnull=True))


def high_tip_mint(chain) -> str:
    """A mint by another sender that pays a higher tip, so it goes first in the next block."""
    admin = Account.from_key(chain.admin_key)
    tx = chain.contract.functions.mint(admin.address, UNITS).build_transaction(
        {
            "from": admin.address,
            "nonce": chain.w3.eth.get_transaction_count(admin.address, "pending"),
            "maxPriorityFeePerGas": 50 * GWEI,
            "maxFeePerGas": 200 * GWEI,
            "gas": 200_000,
            "chainId": chain.w3.eth.chain_id,
        }
    )
    return chain.w3.eth.send_raw_transaction(admin.sign_transaction(tx).raw_transaction).hex()


@pytest.mark.django_db
def test_a_mint_removed_by_a_reorg_alerts_stops_sending_and_a_reinclusion_supersedes_its_claim(
    lagging, paid_deposit
):
    chain = lagging
    admin = Account.from_key(chain.admin_key).address
    chain.transact(
        chain.admin_key, chain.contract.functions.grantRole(role_id("MINTER_ROLE"), admin)
    )
    deposit = paid_deposit()
    before_mint = chain.node.snapshot()
    assert mint_jobs_process(client_factory=mint_client).signed == 1
    mine(chain)
    confirm_run()
    assert status_of(deposit) == "minted"
    mint = MintTransaction.objects.get(deposit=deposit)
    receipt = chain.w3.eth.get_transaction_receipt(mint.tx_hash)
    assert safe_head(chain) < receipt["blockNumber"]  # recorded under latest, not yet safe
    assert mint.finality_checked_at is None

    # A reorg takes the block away (the transaction is not back in the pool either).
    chain.node.revert(before_mint)
    mine(chain, 3)
    counts = confirm_run()  # the whole run: its ledger check must not fill the lost nonce

    assert counts.get("finality_gone") == 1
    assert not MintAttempt.objects.filter(kind="nonce_fill").exists()  # the bytes can still land
    [alert] = open_alerts()
    assert alert.key == str(deposit.pk) and "rebroadcast" in alert.detail
    assert alert.deposit_id == deposit.pk  # a bank admin of the deposit's bank sees it
    signer = SignerAccount.objects.get()
    assert not signer.sending_enabled and NOT_ON_CHAIN in signer.disabled_reason
    assert status_of(deposit) == "minted"  # the record stands; the runbook acts on it
    assert MintLogClaim.objects.filter(deposit=deposit).count() == 1

    # The runbook: rebroadcast the same signed bytes. Another mint goes first in the block,
    # so the deposit's Transfer lands at another log index.
    attempt = MintAttempt.objects.get(mint_transaction=mint)
    chain.node.rpc("evm_setAutomine", False)
    high_tip_mint(chain)
    chain.w3.eth.send_raw_transaction(attempt.raw_tx)
    mine(chain)
    chain.node.rpc("evm_setAutomine", True)
    again = chain.w3.eth.get_transaction_receipt(mint.tx_hash)
    assert again["status"] == 1
    first = claim_current(deposit.pk)
    assert mints_finality_check(client=mint_client()) == {}  # not below the safe head yet
    assert len(open_alerts()) == 1

    mine(chain, 12)
    assert safe_head(chain) >= again["blockNumber"]
    counts = confirm_run()  # the runner calls the finality step after the confirm steps

    assert counts.get("finality_superseded") == 1
    claims = list(MintLogClaim.objects.filter(deposit=deposit).order_by("claimed_at", "id"))
    assert len(claims) == 2 and claims[1].supersedes_id == claims[0].pk == first.pk
    assert (claims[0].tx_hash, claims[0].log_index) == (mint.tx_hash, mint.log_index)
    mint.refresh_from_db()
    assert claims[1].log_index == mint.log_index != claims[0].log_index
    assert claim_current(deposit.pk) == claims[1]
    assert mint.finality_checked_at is not None
    assert open_alerts() == []
    assert Alert.objects.filter(kind=NOT_ON_CHAIN, resolved_at__isnull=False).count() == 1


@pytest.mark.django_db
def test_a_mint_that_stays_is_marked_checked_once_the_safe_head_passes_it(lagging, paid_deposit):
    chain = lagging
    deposit = paid_deposit()
    assert mint_jobs_process(client_factory=mint_client).signed == 1
    mine(chain)
    confirm_run()
    mint = MintTransaction.objects.get(deposit=deposit)
    assert mint.status == "minted" and mint.finality_checked_at is None

    mine(chain, 12)
    assert confirm_run().get("finality_final") == 1

    mint.refresh_from_db()
    assert mint.finality_checked_at is not None
    assert MintLogClaim.objects.filter(deposit=deposit).count() == 1
    assert open_alerts() == [] and SignerAccount.objects.get().sending_enabled
    assert mints_finality_check(client=mint_client()) == {}  # checked once, not again


@pytest.mark.django_db
def test_under_safe_nothing_is_recorded_before_the_safe_head_passes_the_mint(
    lagging, paid_deposit, settings
):
    settings.MINT_CONFIRMATION_TAG = "safe"
    chain = lagging
    deposit = paid_deposit()
    assert mint_jobs_process(client_factory=mint_client).signed == 1
    mine(chain)
    block = chain.w3.eth.get_transaction_receipt(MintAttempt.objects.get().tx_hash)["blockNumber"]

    waited = 0
    while safe_head(chain) < block:
        mints_confirm(client_factory=mint_client)
        assert status_of(deposit) == "mint_processing", f"recorded at safe {safe_head(chain)}"
        assert not MintLogClaim.objects.exists()
        mine(chain)
        waited += 1
    assert waited >= 1  # the safe head did lag the mint

    mints_confirm(client_factory=mint_client)
    assert status_of(deposit) == "minted"
    assert MintLogClaim.objects.filter(deposit=deposit).count() == 1


@pytest.mark.django_db
def test_two_mints_of_one_amount_to_one_wallet_in_one_safe_transaction_stay_final(
    safe, minting, paid_deposit, compliance, settings
):
    """Plain mints the Safe made for two deposits of the same wallet and amount: each claim
    keeps its own log, and the re-check neither supersedes nor alerts."""
    from safe_eth.eth import EthereumClient
    from safe_eth.eth.contracts import get_multi_send_call_only_V1_4_1_contract
    from safe_eth.safe.multi_send import MultiSend, MultiSendOperation, MultiSendTx

    settings.NTZS_MINT_WITH_REF = False
    deposits = [paid_deposit(10_000), paid_deposit(10_000)]
    factory = get_multi_send_call_only_V1_4_1_contract(minting.w3)
    multisend = transact(minting.w3, minting.admin_key, factory.constructor())["contractAddress"]
    data = MultiSend(EthereumClient(minting.url), multisend, call_only=True).build_tx_data(
        [
            MultiSendTx(
                MultiSendOperation.CALL,
                minting.address,
                0,
                calldata(minting, "mint", d.wallet.address, d.amount_tzs * UNITS),
            )
            for d in deposits
        ]
    )
    tx_hash = safe_exec(safe, minting, multisend, data, operation=1)
    for deposit in deposits:
        assert safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance) == (
            "minted"
        )
    before = {c.deposit_id: c.log_index for c in MintLogClaim.objects.all()}
    assert len(set(before.values())) == 2
    mine(minting, 100)  # the default anvil's safe head lags by up to two epochs

    assert mints_finality_check(client=mint_client()) == {"finality_final": 2}
    assert {c.deposit_id: c.log_index for c in MintLogClaim.objects.all()} == before
    assert (
        open_alerts() == []
        and not MintTransaction.objects.filter(finality_checked_at__isnull=True).exists()
    )
