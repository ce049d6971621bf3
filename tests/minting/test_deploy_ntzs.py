"""`manage.py deploy_ntzs` against a real anvil."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.envfile import env_file_read
from minting.chain import ntzs_connect
from minting.models import TokenDeployment
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS


@pytest.fixture
def deploy_env(chain_settings, settings, monkeypatch):
    monkeypatch.setenv("DEPLOYER_PRIVATE_KEY", DEV_PRIVATE_KEYS[0])
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = ""
    settings.SAFE_ADDRESS = DEV_ADDRESSES[8]
    return chain_settings


def _deploy(*args, **kwargs):
    call_command("deploy_ntzs", *args, **kwargs)
    return TokenDeployment.objects.latest("deployed_at")


@pytest.mark.django_db
def test_deploy_grants_minter_role_and_records_the_deploy_block_hash(deploy_env, tmp_path):
    env_file = tmp_path / "local.env"
    deployment = _deploy(write_env=str(env_file))
    client = ntzs_connect(
        rpc_url=deploy_env.url, chain_id=31337, contract_address=deployment.contract_address
    )
    assert client.has_role("MINTER_ROLE", deploy_env.minter_address)
    assert client.has_role("MINTER_ROLE", DEV_ADDRESSES[8])  # the Safe
    assert client.has_role("DEFAULT_ADMIN_ROLE", DEV_ADDRESSES[0])
    block = deploy_env.w3.eth.get_block(deployment.deploy_block)
    assert deployment.deploy_block_hash == "0x" + bytes(block["hash"]).hex()
    written = env_file_read(env_file)
    assert written["NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA"] == deployment.contract_address
    assert written["NTZS_DEPLOY_BLOCK"] == str(deployment.deploy_block)


@pytest.mark.django_db
def test_deploy_refuses_when_the_configured_address_holds_code(deploy_env, settings):
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = deploy_env.address
    with pytest.raises(CommandError, match="already deployed at .* refusing"):
        call_command("deploy_ntzs")
    assert TokenDeployment.objects.count() == 0


@pytest.mark.django_db
def test_a_configured_address_without_code_needs_force_outside_local(deploy_env, settings):
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = DEV_ADDRESSES[7]
    with pytest.raises(CommandError, match="has no code .* pass --force"):
        call_command("deploy_ntzs")
    assert TokenDeployment.objects.count() == 0
    assert _deploy(force=True).contract_address != DEV_ADDRESSES[7]


@pytest.mark.django_db
def test_local_profile_redeploys_over_a_lost_chain(deploy_env, settings):
    settings.PROFILE = "local"
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = DEV_ADDRESSES[7]
    assert _deploy().contract_address != DEV_ADDRESSES[7]


@pytest.mark.django_db
def test_deploy_refuses_a_node_on_another_chain(deploy_env, settings):
    settings.CHAIN_ID = 84532
    with pytest.raises(CommandError, match="is chain 31337, but CHAIN_ID is 84532"):
        call_command("deploy_ntzs")
    assert TokenDeployment.objects.count() == 0


@pytest.mark.django_db
def test_deploy_without_a_deployer_key_is_refused(deploy_env, monkeypatch):
    monkeypatch.delenv("DEPLOYER_PRIVATE_KEY")
    with pytest.raises(CommandError, match="DEPLOYER_PRIVATE_KEY is not set"):
        call_command("deploy_ntzs")
