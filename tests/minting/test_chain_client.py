"""The chain client against a real anvil with the real NTZS contract."""

import uuid

import pytest

from minting.chain import (
    ChainUnavailable,
    ContractMissing,
    DepositMintedLog,
    NtzsClient,
    TransferLog,
    WrongChain,
    ntzs_connect,
    ntzs_from_settings,
    receipt_token_logs,
    redact_url,
)
from minting.contract_artifact import deposit_ref
from tests.support.anvil import DEV_ADDRESSES, AnvilNode


def test_client_reads_the_token(chain_settings):
    client = ntzs_from_settings()
    assert client.decimals() == 18
    assert client.total_supply() == 0
    assert client.paused() is False
    assert client.has_role("MINTER_ROLE", chain_settings.minter_address) is True
    assert client.has_role("MINTER_ROLE", DEV_ADDRESSES[5]) is False
    assert client.is_frozen(DEV_ADDRESSES[5]) is False
    assert client.is_blacklisted(DEV_ADDRESSES[5]) is False
    assert client.supports_deposit_ref is True
    assert client.is_deposit_minted(deposit_ref(uuid.uuid4())) is False


def test_a_node_with_another_chain_id_is_refused_with_a_sentence(chain_settings):
    other = AnvilNode(chain_id=84532)
    try:
        with pytest.raises(WrongChain, match="is chain 84532, but CHAIN_ID is 31337; refusing"):
            ntzs_connect(rpc_url=other.url, chain_id=31337, contract_address=chain_settings.address)
    finally:
        other.stop()


def test_an_address_without_code_is_refused(chain_settings):
    with pytest.raises(ContractMissing, match="no contract code"):
        ntzs_connect(rpc_url=chain_settings.url, chain_id=31337, contract_address=DEV_ADDRESSES[7])


def test_an_unreachable_node_is_reported_without_the_url_secret():
    url = "http://127.0.0.1:9/v2/SECRET-API-KEY"
    with pytest.raises(ChainUnavailable) as excinfo:
        ntzs_connect(rpc_url=url, chain_id=31337, contract_address=DEV_ADDRESSES[7])
    assert "SECRET-API-KEY" not in str(excinfo.value)
    assert redact_url(url) == "http://127.0.0.1:9"


def test_transfer_and_deposit_minted_logs_are_decoded_in_order(chain_settings):
    deposit_id = uuid.uuid4()
    ref = deposit_ref(deposit_id)
    recipient = DEV_ADDRESSES[6]
    receipt = chain_settings.transact(
        chain_settings.minter_key,
        chain_settings.contract.functions.mintForDeposit(recipient, 5_000 * 10**18, ref),
    )
    logs = receipt_token_logs(receipt, token_address=chain_settings.address)
    assert [type(log) for log in logs] == [TransferLog, DepositMintedLog]
    transfer, minted = logs
    assert transfer.from_address == "0x" + "00" * 20
    assert transfer.to_address == recipient
    assert transfer.amount_units == 5_000 * 10**18
    assert minted.deposit_ref == ref
    assert minted.log_index == transfer.log_index + 1
    assert ntzs_from_settings().is_deposit_minted(ref) is True


def test_a_batch_answer_that_is_not_what_was_asked_is_chain_unavailable(chain_settings):
    """An eth_call to an address without code answers "0x": the hand-decoded batch readers
    say the read failed (the run is delayed), never crash the task."""
    w3 = ntzs_connect(
        rpc_url=chain_settings.url, chain_id=31337, contract_address=chain_settings.address
    ).w3
    no_code = NtzsClient(w3, DEV_ADDRESSES[7])

    with pytest.raises(ChainUnavailable, match="token reads failed"):
        no_code.views([("paused", ())])
    with pytest.raises(ChainUnavailable, match="minter's state could not be read"):
        no_code.minter_state(chain_settings.minter_address)
