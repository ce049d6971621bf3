"""`minting.tasks.check_minter`: one alert per condition, opened and resolved on change."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.models import Alert
from minting.chain import role_id
from minting.services import minter_check
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS


def _open_kinds():
    return set(Alert.objects.filter(resolved_at__isnull=True).values_list("kind", flat=True))


@pytest.mark.django_db
def test_a_healthy_minter_opens_no_alert(chain_settings):
    result = minter_check()
    assert result.has_minter_role and not result.paused and result.problems == []
    assert _open_kinds() == set()


@pytest.mark.django_db
def test_a_minter_without_the_role_alerts_until_the_role_is_granted(chain_settings, settings):
    settings.MINTER_PRIVATE_KEY = DEV_PRIVATE_KEYS[5]
    assert "does not hold MINTER_ROLE" in minter_check().problems[0]
    minter_check()
    assert Alert.objects.filter(kind="minter role missing").count() == 1
    chain_settings.transact(
        chain_settings.admin_key,
        chain_settings.contract.functions.grantRole(role_id("MINTER_ROLE"), DEV_ADDRESSES[5]),
    )
    minter_check()
    assert _open_kinds() == set()


@pytest.mark.django_db
def test_a_paused_token_and_low_gas_are_alerted(chain_settings, settings):
    chain_settings.transact(chain_settings.admin_key, chain_settings.contract.functions.pause())
    settings.MINTER_MIN_GAS_WEI = 10**30
    minter_check()
    assert _open_kinds() == {"token paused", "minter gas low"}


@pytest.mark.django_db
def test_an_unreachable_chain_is_one_alert(settings):
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = DEV_ADDRESSES[7]
    settings.MINTER_PRIVATE_KEY = DEV_PRIVATE_KEYS[1]
    assert minter_check() is None
    assert minter_check() is None
    assert Alert.objects.filter(kind="minter chain unreachable or wrong").count() == 1


@pytest.mark.django_db
def test_a_deposit_ref_setting_that_contradicts_the_token_is_alerted_and_refused(
    chain_settings, settings
):
    """The worker refuses to sign on this condition; check_minter says so too (DESIGN §7.5)."""
    settings.NTZS_MINT_WITH_REF = False  # the local token has mintForDeposit
    result = minter_check()
    assert result.problems == [
        "NTZS_MINT_WITH_REF=False contradicts the token, which has mintForDeposit"
    ]
    assert _open_kinds() == {"deposit reference setting wrong"}
    with pytest.raises(CommandError, match="(?i)ntzs_mint_with_ref=false contradicts the token"):
        call_command("check_minter")
    settings.NTZS_MINT_WITH_REF = True
    assert minter_check().problems == []
    assert _open_kinds() == set()
