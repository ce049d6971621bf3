"""Granting and revoking MINTER_ROLE (issue 15 point 1, for the key rotation of point 5)
against the real NTZS on anvil: through an operator key holding DEFAULT_ADMIN_ROLE, and as
Safe payloads executed by the local Safe; grant is four eyes, revoke one person."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from core.exceptions import PermissionRefused, ServiceError
from core.models import AdminAction, DualControlRequest
from minting.chain import hex_str, role_id
from minting.services.safe import batch_checksum
from minting.services.token_admin import (
    token_admin_approve,
    token_admin_execute,
    token_admin_outcome,
    token_admin_status,
    token_grant_minter,
    token_revoke_minter,
)
from tests.factories import super_admin
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

OPERATOR_KEY, OPERATOR = DEV_PRIVATE_KEYS[7], DEV_ADDRESSES[7]
NEW_MINTER = DEV_ADDRESSES[9]
MINTER_ROLE_ID = hex_str(role_id("MINTER_ROLE"))


@pytest.fixture
def superadmin_two(db):
    return super_admin(email="super2@ntzs.test", full_name="Zawadi Mrisho")


def grant(chain, role: str, account: str) -> None:
    chain.transact(chain.admin_key, chain.contract.functions.grantRole(role_id(role), account))


def has_minter(chain, account: str) -> bool:
    return chain.contract.functions.hasRole(role_id("MINTER_ROLE"), account).call()


@pytest.fixture
def admin_operator(chain_settings, settings):
    """OPERATOR_PRIVATE_KEY set to a dev key holding DEFAULT_ADMIN_ROLE."""
    grant(chain_settings, "DEFAULT_ADMIN_ROLE", OPERATOR)
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    return chain_settings


def executed(result, callbacks) -> str:
    assert result.lane == "operator" and len(callbacks) == 1
    return token_admin_execute(action_id=result.action_id)


@pytest.mark.django_db
def test_grant_needs_two_people_and_revoke_one_through_the_operator_key(
    admin_operator, superadmin, superadmin_two, django_capture_on_commit_callbacks
):
    chain = admin_operator
    assert not has_minter(chain, NEW_MINTER)
    request = token_grant_minter(address=NEW_MINTER.lower(), actor=superadmin, reason="rotation")
    assert request.lane == "four_eyes"
    with pytest.raises(PermissionRefused, match="different person"):
        token_admin_approve(request_id=request.request_id, checker=superadmin)
    assert not AdminAction.objects.filter(action="token.grant_minter").exists()
    with django_capture_on_commit_callbacks() as callbacks:
        granted = token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    assert granted.call["method"] == "grantRole"
    assert granted.call["args"] == {"role": MINTER_ROLE_ID, "account": NEW_MINTER}
    assert granted.call["role_name"] == "MINTER_ROLE"
    assert executed(granted, callbacks) == "done"
    assert has_minter(chain, NEW_MINTER)
    row = token_admin_outcome(action_id=granted.action_id)
    assert row.outcome == "done" and row.actor == superadmin_two
    assert row.params["state"]["roles"] == {"MINTER_ROLE": True}
    receipt = chain.w3.eth.get_transaction_receipt(row.params["tx_hash"])
    assert receipt["from"] == OPERATOR and receipt["status"] == 1

    with django_capture_on_commit_callbacks() as callbacks:
        revoked = token_revoke_minter(address=NEW_MINTER, actor=superadmin, reason="old key")
    assert revoked.lane == "operator" and revoked.call["method"] == "revokeRole"
    assert executed(revoked, callbacks) == "done"
    assert not has_minter(chain, NEW_MINTER)
    row = token_admin_outcome(action_id=revoked.action_id)
    assert row.params["state"]["roles"] == {"MINTER_ROLE": False}
    outcomes = AdminAction.objects.filter(action__in=("token.grant_minter", "token.revoke_minter"))
    assert sorted(outcomes.values_list("action", "outcome")) == [
        ("token.grant_minter", "done"),
        ("token.grant_minter", "queued"),
        ("token.grant_minter", "sent"),
        ("token.grant_minter", "signed"),
        ("token.revoke_minter", "done"),
        ("token.revoke_minter", "queued"),
        ("token.revoke_minter", "sent"),
        ("token.revoke_minter", "signed"),
    ]


@pytest.mark.django_db
def test_an_operator_key_with_other_roles_but_not_the_admin_role_gets_the_safe_payload(
    chain_settings, settings, superadmin, django_capture_on_commit_callbacks
):
    grant(chain_settings, "PAUSER_ROLE", OPERATOR)
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    with django_capture_on_commit_callbacks() as callbacks:
        result = token_revoke_minter(address=NEW_MINTER, actor=superadmin, reason="old key")
    assert callbacks == [] and result.lane == "safe"
    assert result.lane_reason == f"the operator key {OPERATOR} does not hold DEFAULT_ADMIN_ROLE"


@pytest.mark.django_db
def test_only_super_admins_grant_or_revoke_and_a_reason_is_needed(
    chain_settings, superadmin, compliance
):
    with pytest.raises(PermissionRefused, match="super_admin"):
        token_revoke_minter(address=NEW_MINTER, actor=compliance, reason="old key")
    with pytest.raises(PermissionRefused, match="super_admin"):
        token_grant_minter(address=NEW_MINTER, actor=compliance, reason="rotation")
    with pytest.raises(ServiceError, match=r"Say why you grant MINTER_ROLE \(--reason\)"):
        token_grant_minter(address=NEW_MINTER, actor=superadmin, reason=" ")
    with pytest.raises(ServiceError, match="is not an address"):
        token_revoke_minter(address="0xabc", actor=superadmin, reason="old key")
    assert not AdminAction.objects.exists() and not DualControlRequest.objects.exists()


def safe_execute(safe, chain, batch: dict) -> None:
    """What a Safe owner does with the downloaded file: each transaction through the Safe."""
    assert batch["meta"]["checksum"] == batch_checksum(
        batch | {"meta": {k: v for k, v in batch["meta"].items() if k != "checksum"}}
    )
    for tx in batch["transactions"]:
        tx_hash = safe.exec_call(tx["to"], bytes.fromhex(tx["data"].removeprefix("0x")))
        assert chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
@pytest.mark.django_db
def test_the_safe_payloads_grant_and_revoke_the_role_when_executed_by_the_safe(
    local_safe, chain_settings, settings, superadmin, superadmin_two, tmp_path, capsys
):
    chain = chain_settings
    grant(chain, "DEFAULT_ADMIN_ROLE", local_safe.address)
    settings.SAFE_ADDRESS = local_safe.address
    settings.OPERATOR_PRIVATE_KEY = ""

    call_command(
        "token_admin", "grant_minter", NEW_MINTER, "--actor", superadmin.email,
        "--reason", "rotation",
    )  # fmt: skip
    request = DualControlRequest.objects.get(action="token_grant_minter", decision="pending")
    assert f"token_admin approve {request.pk}" in capsys.readouterr().out
    out = tmp_path / "grant.json"
    call_command(
        "token_admin", "approve", str(request.pk), "--actor", superadmin_two.email,
        "--payload-out", str(out),
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert f"grantRole({MINTER_ROLE_ID}, {NEW_MINTER}) on {chain.address}" in printed
    batch = json.loads(out.read_text())
    assert batch["transactions"][0]["contractInputsValues"] == {
        "role": MINTER_ROLE_ID,
        "account": NEW_MINTER,
    }
    assert batch["meta"]["createdFromSafeAddress"] == local_safe.address
    safe_execute(local_safe, chain, batch)
    assert has_minter(chain, NEW_MINTER)
    assert token_admin_status(address=NEW_MINTER, role="MINTER_ROLE")["roles"] == {
        "MINTER_ROLE": True
    }

    revoke = token_revoke_minter(address=NEW_MINTER, actor=superadmin, reason="old key")
    assert revoke.lane == "safe" and revoke.call["method"] == "revokeRole"
    safe_execute(local_safe, chain, revoke.batch)
    assert not has_minter(chain, NEW_MINTER)
    call_command("token_admin", "status", NEW_MINTER, "--role", "MINTER_ROLE")
    assert f"{NEW_MINTER}: MINTER_ROLE=False" in capsys.readouterr().out
    rows = AdminAction.objects.filter(outcome="safe_payload")
    assert sorted(rows.values_list("action", flat=True)) == [
        "token.grant_minter",
        "token.revoke_minter",
    ]
