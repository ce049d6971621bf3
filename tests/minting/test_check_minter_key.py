"""`manage.py check_minter_key`: role, gas and chain nonces of any address; for the current
key also the sending switch and the attempts in flight; a non-zero exit with one sentence when
the key cannot mint or the chain cannot be read; never the key itself."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.models import Alert
from minting.services.operator import minting_sending_set
from minting.services.runner import confirm_run, mint_jobs_run
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

pytestmark = pytest.mark.django_db


def check(*args) -> str:
    out = StringIO()
    call_command("check_minter_key", *args, stdout=out)
    return out.getvalue()


def test_the_current_key_shows_its_nonces_switch_and_the_attempt_in_flight(
    minting, paid_deposit, anvil_node, superadmin
):
    chain = minting
    deposit = paid_deposit(2_000)
    anvil_node.rpc("evm_setAutomine", False)
    try:
        assert mint_jobs_run()["sent"] == {"sent": 1}
        minting_sending_set(enabled=False, reason="key rotation", actor=superadmin)
        mined = chain.w3.eth.get_transaction_count(chain.minter_address)
        out = check()
    finally:
        anvil_node.rpc("evm_setAutomine", True)
    assert f"address {chain.minter_address} (MINTER_PRIVATE_KEY)" in out
    assert "MINTER_ROLE=True" in out
    assert f"nonce latest={mined} pending={mined + 1}" in out
    assert "sending stopped (key rotation)" in out
    assert "in flight: 1" in out
    assert f"nonce {mined} mint sent" in out and f"deposit={deposit.pk}" in out
    assert out.rstrip().endswith("OK: this key can mint")
    assert DEV_PRIVATE_KEYS[1][2:] not in out
    anvil_node.rpc("evm_mine")
    confirm_run()  # the mint lands: the status table holds after the test
    assert "in flight: 0" in check("--address", chain.minter_address.lower())


def test_an_address_without_the_role_cannot_mint_and_exits_non_zero(chain_settings):
    with pytest.raises(CommandError) as refused:
        check("--address", DEV_ADDRESSES[5])
    assert (
        str(refused.value)
        == f"{DEV_ADDRESSES[5]} cannot mint: {DEV_ADDRESSES[5]} does not hold MINTER_ROLE."
    )
    assert not Alert.objects.exists()  # a check of any key opens no alert


def test_a_key_short_of_gas_cannot_mint(chain_settings, settings):
    settings.MINTER_MIN_GAS_WEI = 10**30
    with pytest.raises(CommandError, match="below MINTER_MIN_GAS_ETH"):
        check()


def test_an_unreadable_chain_is_one_sentence(settings):
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = DEV_ADDRESSES[7]
    settings.MINTER_PRIVATE_KEY = DEV_PRIVATE_KEYS[1]
    with pytest.raises(CommandError, match=r"^The chain could not be read, so 0x7099"):
        check()


def test_a_malformed_address_is_refused(chain_settings):
    with pytest.raises(CommandError, match="is not an address"):
        check("--address", "0x1234")
