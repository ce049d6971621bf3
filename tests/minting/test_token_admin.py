"""Token administration for incident response (issue 15 point 1, point 6's operator gas
check) against the real NTZS on anvil: each action through an operator key holding the role,
the same actions as Safe payloads executed by a local Safe, four eyes, refusals recorded as
refused, pause and unpause around the mint pipeline, blacklist holds, and the start-up
refusal of an operator key equal to the minter key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from eth_account import Account

from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.models import AdminAction, DualControlRequest
from core.services import dual_control_approve
from deposits.models import DepositRequest
from deposits.services.operator import deposit_hold_release_request
from minting.chain import role_id
from minting.models import MintLogClaim
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from minting.services.safe import batch_checksum
from minting.services.token_admin import (
    BLACKLIST_HOLD,
    TASK_NAME,
    token_admin_approve,
    token_admin_execute,
    token_admin_outcome,
    token_admin_status,
    token_blacklist,
    token_freeze,
    token_pause,
    token_unblacklist,
    token_unfreeze,
    token_unpause,
    token_wipe,
)
from tests.factories import WalletFactory, super_admin
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

OPERATOR_KEY, OPERATOR = DEV_PRIVATE_KEYS[7], DEV_ADDRESSES[7]
HOLDER = DEV_ADDRESSES[8]
UNITS = 10**18
ADMIN_ROLES = ("PAUSER_ROLE", "FREEZER_ROLE", "BLACKLISTER_ROLE", "WIPER_ROLE")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def superadmin_two(db):
    return super_admin(email="super2@ntzs.test", full_name="Zawadi Mrisho")


def grant_roles(chain, account: str) -> None:
    for role in ADMIN_ROLES:
        chain.transact(chain.admin_key, chain.contract.functions.grantRole(role_id(role), account))


@pytest.fixture
def operator(chain_settings, settings):
    """OPERATOR_PRIVATE_KEY set to a dev key holding the four administrative roles."""
    grant_roles(chain_settings, OPERATOR)
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    return chain_settings


def executed(result, callbacks) -> str:
    """The queued action was handed to the task on commit; run the task's service (what the
    worker does) and return its outcome."""
    assert result.lane == "operator"
    assert len(callbacks) == 1  # task_enqueue_on_commit(TASK_NAME, action id)
    return token_admin_execute(action_id=result.action_id)


def run_one_person(service, django_capture_on_commit_callbacks, **kwargs) -> str:
    with django_capture_on_commit_callbacks() as callbacks:
        result = service(**kwargs)
    return executed(result, callbacks)


def run_four_eyes(service, maker, checker, django_capture_on_commit_callbacks, **kwargs):
    request = service(actor=maker, **kwargs)
    assert request.lane == "four_eyes"
    with django_capture_on_commit_callbacks() as callbacks:
        result = token_admin_approve(request_id=request.request_id, checker=checker)
    return executed(result, callbacks), result


def done_row(result) -> AdminAction:
    row = token_admin_outcome(action_id=result.action_id)
    return row


def mint_to(chain, address: str, amount_units: int) -> None:
    chain.transact(chain.minter_key, chain.contract.functions.mint(address, amount_units))


# --- Through the operator key ------------------------------------------------------------------


@pytest.mark.django_db
def test_each_action_through_the_operator_key_changes_the_contract_and_reads_back(
    operator, superadmin, superadmin_two, django_capture_on_commit_callbacks, settings
):
    assert settings.OPERATOR_PRIVATE_KEY and TASK_NAME == "minting.tasks.token_admin_execute"
    chain = operator
    mint_to(chain, HOLDER, 7 * UNITS)
    capture = django_capture_on_commit_callbacks

    assert run_one_person(token_pause, capture, actor=superadmin, reason="suspicious mint") == (
        "done"
    )
    assert chain.contract.functions.paused().call() is True
    outcome, _ = run_four_eyes(token_unpause, superadmin, superadmin_two, capture, reason="ok")
    assert outcome == "done" and chain.contract.functions.paused().call() is False

    assert (
        run_one_person(token_freeze, capture, actor=superadmin, reason="court", address=HOLDER)
        == "done"
    )
    assert chain.contract.functions.isFrozen(HOLDER).call() is True
    outcome, unfreeze = run_four_eyes(
        token_unfreeze, superadmin, superadmin_two, capture, reason="lifted", address=HOLDER
    )
    assert outcome == "done" and chain.contract.functions.isFrozen(HOLDER).call() is False
    state = done_row(unfreeze).params["state"]
    assert state["frozen"] is False and state["balance_units"] == str(7 * UNITS)

    assert (
        run_one_person(token_blacklist, capture, actor=superadmin, reason="fraud", address=HOLDER)
        == "done"
    )
    assert chain.contract.functions.isBlacklisted(HOLDER).call() is True
    outcome, wipe = run_four_eyes(
        token_wipe, superadmin, superadmin_two, capture, reason="order 12", address=HOLDER
    )
    assert outcome == "done" and chain.contract.functions.balanceOf(HOLDER).call() == 0
    row = done_row(wipe)
    assert row.outcome == "done" and row.actor == superadmin_two and row.params["status"] == 1
    assert row.params["state"] == {
        "token": chain.address,
        "paused": False,
        "address": HOLDER,
        "frozen": False,
        "blacklisted": True,
        "balance_units": "0",
    }
    receipt = chain.w3.eth.get_transaction_receipt(row.params["tx_hash"])
    assert receipt["from"] == OPERATOR and receipt["status"] == 1
    outcome, _ = run_four_eyes(
        token_unblacklist, superadmin, superadmin_two, capture, reason="cleared", address=HOLDER
    )
    assert outcome == "done" and chain.contract.functions.isBlacklisted(HOLDER).call() is False
    assert token_admin_status(address=HOLDER)["blacklisted"] is False
    # Every decision and every outcome is audited; the minter's nonce ledger is untouched.
    assert AdminAction.objects.filter(action__startswith="token.", outcome="done").count() == 7
    assert AdminAction.objects.filter(action__startswith="token.", outcome="queued").count() == 7


@pytest.mark.django_db
def test_running_the_task_twice_sends_once(
    operator, superadmin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        result = token_pause(actor=superadmin, reason="incident")
    nonce = operator.w3.eth.get_transaction_count(OPERATOR)
    assert token_admin_execute(action_id=result.action_id) == "done"
    assert token_admin_execute(action_id=result.action_id) == "done"
    assert operator.w3.eth.get_transaction_count(OPERATOR) == nonce + 1
    rows = AdminAction.objects.filter(params__queued_action=str(result.action_id))
    assert sorted(rows.values_list("outcome", flat=True)) == ["done", "sent", "signed"]


@pytest.mark.django_db
def test_a_reverted_wipe_is_recorded_as_refused_and_nothing_as_done(
    operator, superadmin, superadmin_two, django_capture_on_commit_callbacks
):
    mint_to(operator, HOLDER, 3 * UNITS)
    nonce = operator.w3.eth.get_transaction_count(OPERATOR)
    outcome, result = run_four_eyes(
        token_wipe,
        superadmin,
        superadmin_two,
        django_capture_on_commit_callbacks,
        reason="mistaken order",
        address=HOLDER,
    )
    assert outcome == "refused"
    row = done_row(result)
    assert row.outcome == "refused"
    assert f"AccountNotBlacklisted({HOLDER})" in row.params["refusal"]
    assert not AdminAction.objects.filter(action="token.wipe", outcome="done").exists()
    assert operator.contract.functions.balanceOf(HOLDER).call() == 3 * UNITS
    assert operator.w3.eth.get_transaction_count(OPERATOR) == nonce  # nothing was sent


@pytest.mark.django_db
def test_an_operator_short_of_gas_is_told_how_much_and_nothing_is_sent(
    chain_settings, settings, superadmin, django_capture_on_commit_callbacks
):
    poor = Account.create()
    grant_roles(chain_settings, poor.address)
    chain_settings.node.rpc("anvil_setBalance", poor.address, hex(1_000))
    settings.OPERATOR_PRIVATE_KEY = poor.key.hex()
    outcome = run_one_person(
        token_pause, django_capture_on_commit_callbacks, actor=superadmin, reason="incident"
    )
    assert outcome == "refused"
    row = AdminAction.objects.get(action="token.pause", outcome="refused")
    refusal = row.params["refusal"]
    assert f"The operator key {poor.address} holds 0.000000000000001 ETH" in refusal
    assert "needs up to" in refusal and "Nothing was sent." in refusal
    assert int(row.params["needed_wei"]) > 1_000
    assert chain_settings.w3.eth.get_transaction_count(poor.address) == 0
    assert chain_settings.contract.functions.paused().call() is False


# --- Four eyes and roles -----------------------------------------------------------------------


@pytest.mark.django_db
def test_unfreeze_needs_a_second_super_admin(
    operator, superadmin, superadmin_two, compliance, django_capture_on_commit_callbacks
):
    run_one_person(
        token_freeze,
        django_capture_on_commit_callbacks,
        actor=superadmin,
        reason="court order",
        address=HOLDER,
    )
    request = token_unfreeze(address=HOLDER, actor=superadmin, reason="order lifted")
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.request_id, checker=superadmin)
    with pytest.raises(PermissionRefused, match="super_admin"):
        dual_control_approve(request_id=request.request_id, checker=compliance)
    assert DualControlRequest.objects.get(pk=request.request_id).decision == "pending"
    assert not AdminAction.objects.filter(action="token.unfreeze").exists()
    assert operator.contract.functions.isFrozen(HOLDER).call() is True
    # The generic four-eyes approval (Backstage's queue) dispatches it the same way.
    with django_capture_on_commit_callbacks() as callbacks:
        dual_control_approve(request_id=request.request_id, checker=superadmin_two)
    assert len(callbacks) == 1
    queued = AdminAction.objects.get(action="token.unfreeze", outcome="queued")
    assert token_admin_execute(action_id=queued.pk) == "done"
    assert operator.contract.functions.isFrozen(HOLDER).call() is False


@pytest.mark.django_db
def test_only_super_admins_act_on_the_token(operator, compliance):
    with pytest.raises(PermissionRefused, match="super_admin"):
        token_pause(actor=compliance, reason="incident")
    with pytest.raises(PermissionRefused, match="super_admin"):
        token_unblacklist(address=HOLDER, actor=compliance, reason="cleared")
    assert not AdminAction.objects.exists()


@pytest.mark.django_db
def test_the_owner_of_a_wallet_never_decides_about_it(operator, superadmin, superadmin_two):
    wallet = WalletFactory(user=superadmin_two, verified=True)
    with pytest.raises(PermissionRefused, match="it is their own"):
        token_unblacklist(address=wallet.address, actor=superadmin_two, reason="mine")
    request = token_unblacklist(address=wallet.address, actor=superadmin, reason="cleared")
    with pytest.raises(PermissionRefused, match="it is their own"):
        token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    assert DualControlRequest.objects.get(pk=request.request_id).decision == "pending"


@pytest.mark.django_db
def test_a_bad_address_or_a_missing_reason_is_refused_in_one_sentence(operator, superadmin):
    with pytest.raises(ServiceError, match="is not an address"):
        token_freeze(address="0x1234", actor=superadmin, reason="court order")
    with pytest.raises(ServiceError, match="Say why you freeze the token"):
        token_freeze(address=HOLDER, actor=superadmin, reason="  ")
    assert not AdminAction.objects.exists()


# --- The Safe lane ------------------------------------------------------------------------------


@pytest.fixture
def safe_admin(local_safe, chain_settings, settings):
    """The session's Safe holds the administrative roles and is SAFE_ADDRESS; no operator
    key is configured."""
    grant_roles(chain_settings, local_safe.address)
    settings.SAFE_ADDRESS = local_safe.address
    settings.OPERATOR_PRIVATE_KEY = ""
    return local_safe


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
def test_without_an_operator_key_the_safe_payload_produces_the_same_state(
    safe_admin, chain_settings, superadmin, superadmin_two, django_capture_on_commit_callbacks
):
    chain = chain_settings
    mint_to(chain, HOLDER, 5 * UNITS)
    with django_capture_on_commit_callbacks() as callbacks:
        pause = token_pause(actor=superadmin, reason="suspicious mint")
    assert callbacks == [] and pause.lane == "safe"
    assert "OPERATOR_PRIVATE_KEY is not set" in pause.lane_reason
    assert pause.call["text"] == f"pause() on {chain.address}"
    assert pause.batch["meta"]["createdFromSafeAddress"] == safe_admin.address
    safe_execute(safe_admin, chain, pause.batch)
    assert token_admin_status()["paused"] is True

    request = token_unpause(actor=superadmin, reason="contained")
    unpause = token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    assert (
        unpause.lane == "safe"
        and unpause.batch["transactions"][0]["data"] == (unpause.call["data"])
    )
    safe_execute(safe_admin, chain, unpause.batch)
    assert token_admin_status()["paused"] is False

    freeze = token_freeze(address=HOLDER.lower(), actor=superadmin, reason="court order")
    assert freeze.call["args"] == {"account": HOLDER}
    safe_execute(safe_admin, chain, freeze.batch)
    blacklist = token_blacklist(address=HOLDER, actor=superadmin, reason="fraud")
    safe_execute(safe_admin, chain, blacklist.batch)
    request = token_wipe(address=HOLDER, actor=superadmin, reason="order 12")
    wipe = token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    safe_execute(safe_admin, chain, wipe.batch)
    assert token_admin_status(address=HOLDER) == {
        "token": chain.address,
        "paused": False,
        "address": HOLDER,
        "frozen": True,
        "blacklisted": True,
        "balance_units": 0,
    }
    rows = AdminAction.objects.filter(action__startswith="token.", outcome="safe_payload")
    assert rows.count() == 5
    assert rows.get(action="token.wipe").params["batch"] == wipe.batch


@pytest.mark.django_db
def test_an_operator_key_without_the_role_gets_the_safe_payload(
    chain_settings, settings, superadmin, django_capture_on_commit_callbacks
):
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY  # no role granted
    with django_capture_on_commit_callbacks() as callbacks:
        result = token_pause(actor=superadmin, reason="incident")
    assert callbacks == [] and result.lane == "safe"
    assert result.lane_reason == f"the operator key {OPERATOR} does not hold PAUSER_ROLE"
    assert chain_settings.contract.functions.paused().call() is False


@pytest.mark.django_db
def test_the_command_writes_the_batch_file_and_reads_the_state_back(
    chain_settings, settings, superadmin, tmp_path, capsys
):
    settings.OPERATOR_PRIVATE_KEY = ""
    out = tmp_path / "pause.json"
    call_command(
        "token_admin",
        "pause",
        "--actor",
        superadmin.email,
        "--reason",
        "suspicious mint",
        "--payload-out",
        str(out),
    )
    printed = capsys.readouterr().out
    assert f"pause() on {chain_settings.address}" in printed
    batch = json.loads(out.read_text())
    assert batch["transactions"][0]["contractMethod"]["name"] == "pause"
    assert batch["chainId"] == "31337"
    call_command("token_admin", "status", HOLDER)
    printed = capsys.readouterr().out
    assert "paused=False" in printed and f"{HOLDER}: frozen=False blacklisted=False" in printed


@pytest.mark.django_db
def test_four_eyes_on_the_command_line_hands_the_checker_the_batch_file(
    chain_settings, settings, superadmin, superadmin_two, tmp_path, capsys
):
    settings.OPERATOR_PRIVATE_KEY = ""
    call_command(
        "token_admin", "unfreeze", HOLDER, "--actor", superadmin.email, "--reason", "lifted"
    )
    printed = capsys.readouterr().out
    request = DualControlRequest.objects.get(action="token_unfreeze", decision="pending")
    assert f"token_admin approve {request.pk} --actor EMAIL" in printed
    out = tmp_path / "unfreeze.json"
    call_command(
        "token_admin", "approve", str(request.pk), "--actor", superadmin_two.email,
        "--payload-out", str(out),
    )  # fmt: skip
    batch = json.loads(out.read_text())
    assert batch["transactions"][0]["contractInputsValues"] == {"account": HOLDER}
    assert f"unfreeze({HOLDER}) on {chain_settings.address}" in capsys.readouterr().out


# --- Pause around the mint pipeline ---------------------------------------------------------------


@pytest.mark.django_db
def test_pause_stops_minting_within_one_run_and_after_the_unpause_each_deposit_mints_once(
    operator,
    minting,
    paid_deposit,
    superadmin,
    superadmin_two,
    django_capture_on_commit_callbacks,
):
    deposits = [paid_deposit(1_000 + i) for i in range(3)]
    capture = django_capture_on_commit_callbacks
    assert run_one_person(token_pause, capture, actor=superadmin, reason="incident") == "done"
    result = mint_jobs_process(client_factory=mint_client)
    assert result.preflight_reason == "the token is paused" and result.signed == 0
    statuses = set(DepositRequest.objects.values_list("status", flat=True))
    assert statuses == {"mint_pending"}
    request = token_unpause(actor=superadmin, reason="contained")
    assert mint_jobs_process(client_factory=mint_client).signed == 0  # one person is not enough
    with capture() as callbacks:
        unpause = token_admin_approve(request_id=request.request_id, checker=superadmin_two)
    assert executed(unpause, callbacks) == "done"
    assert mint_jobs_process(client_factory=mint_client).signed == 3
    mints_confirm(client_factory=mint_client)
    assert set(DepositRequest.objects.values_list("status", flat=True)) == {"minted"}
    assert MintLogClaim.objects.count() == 3
    assert (
        minting.contract.functions.totalSupply().call()
        == sum(d.amount_tzs for d in deposits) * UNITS
    )
    assert not DepositRequest.objects.filter(transitions__to_status="mint_failed").exists()


# --- Blacklist holds -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_blacklisting_holds_open_deposits_and_their_release_waits_for_the_unblacklist(
    operator,
    minting,
    paid_deposit,
    amina,
    superadmin,
    superadmin_two,
    compliance,
    compliance_two,
    django_capture_on_commit_callbacks,
):
    deposit = paid_deposit(2_000)
    wallet = amina.test_wallet.address
    capture = django_capture_on_commit_callbacks
    with capture() as callbacks:
        result = token_blacklist(address=wallet, actor=superadmin, reason="fraud")
    assert result.held_deposits == [str(deposit.pk)]
    deposit.refresh_from_db()
    assert deposit.hold_reason == BLACKLIST_HOLD and deposit.status == "mint_pending"
    assert deposit.transitions.filter(note=f"hold set: {BLACKLIST_HOLD}", source="admin").exists()
    assert executed(result, callbacks) == "done"
    assert mint_jobs_process(client_factory=mint_client).signed == 0

    with pytest.raises(ConflictError, match="still blacklisted on the token"):
        deposit_hold_release_request(
            deposit_id=deposit.pk, resolution="clear", evidence="cleared", maker=compliance
        )
    outcome, _ = run_four_eyes(
        token_unblacklist, superadmin, superadmin_two, capture, reason="cleared", address=wallet
    )
    assert outcome == "done"
    request = deposit_hold_release_request(
        deposit_id=deposit.pk,
        resolution="clear",
        evidence="cleared by compliance",
        maker=compliance,
    )
    dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert deposit.hold_reason == ""
    assert mint_jobs_process(client_factory=mint_client).signed == 1
    mints_confirm(client_factory=mint_client)
    deposit.refresh_from_db()
    assert deposit.status == "minted"


@pytest.mark.django_db
def test_a_release_approved_while_blacklisted_again_is_refused(
    operator,
    minting,
    paid_deposit,
    amina,
    superadmin,
    compliance,
    compliance_two,
    django_capture_on_commit_callbacks,
):
    """The check runs again before the checker's approval: the chain may have changed."""
    deposit = paid_deposit(2_000)
    wallet = amina.test_wallet.address
    with django_capture_on_commit_callbacks():
        token_blacklist(address=wallet, actor=superadmin, reason="fraud")  # queued, not run
    request = deposit_hold_release_request(
        deposit_id=deposit.pk, resolution="clear", evidence="false alarm", maker=compliance
    )
    operator.transact(operator.admin_key, operator.contract.functions.blacklist(wallet))
    with pytest.raises(ConflictError, match="still blacklisted on the token"):
        dual_control_approve(request_id=request.pk, checker=compliance_two)
    deposit.refresh_from_db()
    assert deposit.hold_reason == BLACKLIST_HOLD


# --- Start-up refusal -----------------------------------------------------------------------------

PRODUCTION = {
    "SECRET_KEY": "production-secret-key-for-tests-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DATABASE_URL": "postgres://ntzs@127.0.0.1:5432/ntzs",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "CHAIN_ID": "84532",
    "BASE_SEPOLIA_RPC_URL": "https://sepolia.base.org",
    "MINTER_PRIVATE_KEY": "0x" + "ab" * 32,
    "ZENOPAY_API_KEY": "zp-key",
    "APP_URL": "https://ntzs.example",
    "ALLOWED_HOSTS": "ntzs.example",
}


def _start(env: dict, var_dir: Path) -> subprocess.CompletedProcess:
    clean = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "NTZS_VAR_DIR": str(var_dir),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_operator_key_equal_to_the_minter_key_is_refused_at_start(tmp_path):
    same = _start(PRODUCTION | {"OPERATOR_PRIVATE_KEY": "AB" * 32}, tmp_path)  # no 0x, capitals
    assert same.returncode != 0 and "started" not in same.stdout
    assert "OPERATOR_PRIVATE_KEY is the same key as MINTER_PRIVATE_KEY" in same.stderr
    assert ("ab" * 32) not in same.stderr.lower()  # the key itself is never echoed
    other = _start(PRODUCTION | {"OPERATOR_PRIVATE_KEY": "0x" + "cd" * 32}, tmp_path)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "started"
