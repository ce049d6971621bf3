"""The operator-key task records the signed bytes before it sends them (issue 15 point 1):
a crash between signing and sending, or between sending and recording, is followed by a
run that broadcasts the same bytes and reads their receipt, never one that signs anew; a
second action signed meanwhile takes the next nonce; a nonce taken by another transaction
ends the action as refused, nothing recorded as done. Real NTZS on anvil, the crash points
of core/crashpoints.py."""

from __future__ import annotations

import pytest

from core.crashpoints import SimulatedCrash
from core.models import AdminAction
from minting.chain import role_id
from minting.services import token_admin
from minting.services.token_admin import (
    token_admin_execute,
    token_blacklist,
    token_freeze,
    token_pause,
)
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

OPERATOR_KEY, OPERATOR = DEV_PRIVATE_KEYS[7], DEV_ADDRESSES[7]
HOLDER = DEV_ADDRESSES[8]


@pytest.fixture
def operator(chain_settings, settings):
    for role in ("PAUSER_ROLE", "FREEZER_ROLE", "BLACKLISTER_ROLE"):
        chain_settings.transact(
            chain_settings.admin_key,
            chain_settings.contract.functions.grantRole(role_id(role), OPERATOR),
        )
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    settings.CRASH_POINTS = set()
    return chain_settings


def queued(service, capture, **kwargs):
    with capture():
        result = service(**kwargs)
    assert result.lane == "operator"
    return result.action_id


def chain_rows(action_id) -> list[tuple[str, str]]:
    rows = AdminAction.objects.filter(params__queued_action=str(action_id)).order_by("at")
    return [(row.outcome, row.params.get("tx_hash", "")) for row in rows]


def operator_nonce(chain) -> int:
    return chain.w3.eth.get_transaction_count(OPERATOR, "latest")


@pytest.mark.django_db
def test_a_crash_after_the_send_rebroadcasts_the_same_bytes_and_signs_nothing_new(
    operator, settings, superadmin, django_capture_on_commit_callbacks
):
    action_id = queued(
        token_pause, django_capture_on_commit_callbacks, actor=superadmin, reason="incident"
    )
    nonce = operator_nonce(operator)
    settings.CRASH_POINTS = {"token_admin_sent_before_record"}
    with pytest.raises(SimulatedCrash):
        token_admin_execute(action_id=action_id)
    # The transaction went out but only "signed" was recorded. (Anvil answers a send before
    # its miner seals the block: wait for the receipt before reading the state.)
    ((outcome, signed_hash),) = chain_rows(action_id)
    assert outcome == "signed"
    assert operator.w3.eth.wait_for_transaction_receipt(signed_hash, timeout=30)["status"] == 1
    assert operator.contract.functions.paused().call() is True
    settings.CRASH_POINTS = set()
    assert token_admin_execute(action_id=action_id) == "done"  # the redelivery
    assert chain_rows(action_id) == [
        ("signed", signed_hash),
        ("sent", signed_hash),
        ("done", signed_hash),
    ]
    assert operator_nonce(operator) == nonce + 1  # one transaction, not two
    assert token_admin_execute(action_id=action_id) == "done"
    assert operator_nonce(operator) == nonce + 1


@pytest.mark.django_db
def test_a_crash_before_the_send_broadcasts_the_recorded_bytes_on_redelivery(
    operator, settings, superadmin, django_capture_on_commit_callbacks
):
    action_id = queued(
        token_freeze,
        django_capture_on_commit_callbacks,
        actor=superadmin,
        reason="court order",
        address=HOLDER,
    )
    nonce = operator_nonce(operator)
    settings.CRASH_POINTS = {"token_admin_signed_before_send"}
    with pytest.raises(SimulatedCrash):
        token_admin_execute(action_id=action_id)
    assert operator_nonce(operator) == nonce  # nothing left
    assert operator.contract.functions.isFrozen(HOLDER).call() is False
    signed = AdminAction.objects.get(params__queued_action=str(action_id), outcome="signed")
    settings.CRASH_POINTS = set()
    assert token_admin_execute(action_id=action_id) == "done"
    receipt = operator.w3.eth.get_transaction_receipt(signed.params["tx_hash"])
    assert receipt["status"] == 1 and receipt["from"] == OPERATOR
    assert operator.contract.functions.isFrozen(HOLDER).call() is True
    assert operator_nonce(operator) == nonce + 1
    assert [outcome for outcome, _ in chain_rows(action_id)] == ["signed", "sent", "done"]


@pytest.mark.django_db
def test_an_action_signed_meanwhile_takes_the_next_nonce_and_both_run_once(
    operator, settings, superadmin, django_capture_on_commit_callbacks, monkeypatch
):
    capture = django_capture_on_commit_callbacks
    first = queued(token_freeze, capture, actor=superadmin, reason="court", address=HOLDER)
    second = queued(token_blacklist, capture, actor=superadmin, reason="fraud", address=HOLDER)
    nonce = operator_nonce(operator)
    settings.CRASH_POINTS = {"token_admin_signed_before_send"}
    with pytest.raises(SimulatedCrash):
        token_admin_execute(action_id=first)
    settings.CRASH_POINTS = set()
    # The first action's bytes never reached the node, so its pending nonce is still `nonce`;
    # the second must not take it. Its transaction waits behind the gap: "sent", not done.
    monkeypatch.setattr(token_admin, "RECEIPT_TIMEOUT_S", 1)
    assert token_admin_execute(action_id=second) == "sent"
    nonces = {
        row.params["queued_action"]: row.params["nonce"]
        for row in AdminAction.objects.filter(outcome="signed")
    }
    assert nonces == {str(first): nonce, str(second): nonce + 1}
    monkeypatch.setattr(token_admin, "RECEIPT_TIMEOUT_S", 30)
    assert token_admin_execute(action_id=first) == "done"
    assert token_admin_execute(action_id=second) == "done"  # mined once the gap is filled
    assert operator_nonce(operator) == nonce + 2
    holder = operator.contract.functions
    assert holder.isFrozen(HOLDER).call() and holder.isBlacklisted(HOLDER).call()


@pytest.mark.django_db
def test_a_signed_nonce_taken_by_another_transaction_is_refused_and_nothing_is_done(
    operator, settings, superadmin, django_capture_on_commit_callbacks
):
    action_id = queued(
        token_pause, django_capture_on_commit_callbacks, actor=superadmin, reason="incident"
    )
    settings.CRASH_POINTS = {"token_admin_signed_before_send"}
    with pytest.raises(SimulatedCrash):
        token_admin_execute(action_id=action_id)
    settings.CRASH_POINTS = set()
    # Someone uses the operator key by hand in the meantime: the recorded nonce is consumed.
    operator.transact(OPERATOR_KEY, operator.contract.functions.freeze(HOLDER))
    assert token_admin_execute(action_id=action_id) == "refused"
    refused = AdminAction.objects.get(params__queued_action=str(action_id), outcome="refused")
    assert refused.params["refusal"].startswith("The node refused the transaction:")
    assert not AdminAction.objects.filter(outcome="done").exists()
    assert operator.contract.functions.paused().call() is False
    assert token_admin_execute(action_id=action_id) == "refused"  # final, nothing re-signed
