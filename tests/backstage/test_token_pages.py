"""Token administration in Backstage (issue 15 point 1) through the real admin URLs, on the
session's anvil token: only super admins open the pages; each action's confirmation page
shows the call and the lane, its POST dispatches it (operator key: the worker's service run
here as the task would; Safe: the batch file downloaded and executed by the local Safe), and
the result page shows the execution's rows and the state read back; four-eyes actions wait
for a second super admin in "Waiting for me"; refusals are sentences, an unreadable chain
too."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from core.models import AdminAction, DualControlRequest
from minting.chain import role_id
from minting.services.token_admin import token_admin_execute, token_freeze
from tests.factories import super_admin
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

pytestmark = pytest.mark.django_db

OPERATOR_KEY, OPERATOR = DEV_PRIVATE_KEYS[7], DEV_ADDRESSES[7]
HOLDER = DEV_ADDRESSES[8]
UNITS = 10**18
PAGE = "/backstage/token/"
ADMIN_ROLES = ("PAUSER_ROLE", "FREEZER_ROLE", "BLACKLISTER_ROLE", "WIPER_ROLE")


def act_url(operation: str) -> str:
    return reverse("admin:token_admin_act", args=[operation])


def grant_roles(chain, account: str) -> None:
    for role in ADMIN_ROLES:
        chain.transact(chain.admin_key, chain.contract.functions.grantRole(role_id(role), account))


@pytest.fixture
def operator(chain_settings, settings):
    grant_roles(chain_settings, OPERATOR)
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    return chain_settings


@pytest.fixture
def rehema(db):
    """A second super admin: the checker of four-eyes token requests."""
    return super_admin(email="rehema@ntzs.test", full_name="Rehema Juma")


def run_queued(action: str) -> str:
    """What the worker does with the queued action (minting.tasks.token_admin_execute)."""
    queued = AdminAction.objects.get(action=action, outcome="queued")
    return token_admin_execute(action_id=queued.pk)


def text(response) -> str:
    return response.content.decode()


def test_only_super_admins_open_the_token_pages_and_act(
    chain_settings, settings, login, salim, neema, nmb_admin, root
):
    settings.OPERATOR_PRIVATE_KEY = ""
    payload = token_freeze(address=HOLDER, actor=salim, reason="court order")
    result_url = reverse("admin:token_admin_action", args=[payload.action_id])
    batch_url = reverse("admin:token_admin_batch", args=[payload.action_id])
    for person in (neema, nmb_admin, root):
        client = login(person)
        assert client.get(PAGE).status_code == 403
        assert client.get(act_url("pause")).status_code == 403
        assert client.post(act_url("pause"), {"reason": "x"}).status_code == 403
        assert client.get(result_url).status_code == 403
        assert client.get(batch_url).status_code == 403
        home = client.get("/backstage/")
        assert reverse("admin:token_admin") not in text(home)
    assert list(AdminAction.objects.values_list("action", flat=True)) == ["token.freeze"]
    client = login(salim)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Token administration" in text(page)
    assert 'data-paused="false"' in text(page)
    assert reverse("admin:token_admin") in text(client.get("/backstage/"))
    assert client.get(result_url).status_code == 200
    assert client.get(batch_url).status_code == 200


def test_pause_through_the_operator_key_shows_the_state_read_back(
    operator, login, salim, django_capture_on_commit_callbacks
):
    client = login(salim)
    preview = client.get(act_url("pause"))
    assert preview.status_code == 200
    body = text(preview)
    assert "pause()" in body and 'data-lane="operator"' in body
    assert f"the operator key {OPERATOR} holds PAUSER_ROLE" in body
    assert not AdminAction.objects.exists()  # the confirmation page writes nothing
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(act_url("pause"), {"reason": "suspicious mint"})
    assert response.status_code == 302 and len(callbacks) == 1
    queued = AdminAction.objects.get(action="token.pause", outcome="queued")
    assert response.url == reverse("admin:token_admin_action", args=[queued.pk])
    assert operator.contract.functions.paused().call() is False  # nothing sent by the request
    waiting = text(client.get(response.url))
    assert "Waiting for the worker" in waiting

    assert token_admin_execute(action_id=queued.pk) == "done"
    result = text(client.get(response.url))
    assert "token-result-done" in result
    assert 'data-outcome="signed"' in result and 'data-outcome="done"' in result
    assert 'data-paused="true"' in result
    page = text(client.get(PAGE))
    assert 'data-paused="true"' in page
    assert 'data-action="token.pause"' in page


def test_freeze_by_one_and_the_unfreeze_decided_by_a_second_super_admin(
    operator, login, salim, rehema, django_capture_on_commit_callbacks
):
    client = login(salim)
    with django_capture_on_commit_callbacks():
        client.post(act_url("freeze"), {"address": HOLDER.lower(), "reason": "court order"})
    assert run_queued("token.freeze") == "done"
    looked_up = text(client.get(PAGE, {"address": HOLDER}))
    assert 'data-frozen="true"' in looked_up

    response = client.post(act_url("unfreeze"), {"address": HOLDER, "reason": "order lifted"})
    assert response.status_code == 302
    assert response.url == reverse("admin:token_admin_address", args=[HOLDER])
    request = DualControlRequest.objects.get(action="token_unfreeze", decision="pending")
    page = client.get(response.url)
    assert "Four-eyes request" in text(page) and "Waiting for me" in text(page)
    assert "token-pending-request" in text(page)
    assert not AdminAction.objects.filter(action="token.unfreeze").exists()

    checker = login(rehema)
    queue = text(checker.get(reverse("admin:four_eyes")))
    assert "token_unfreeze" in queue
    decision = text(checker.get(reverse("admin:four_eyes_decision", args=[request.pk])))
    assert "Unfreezes the address" in decision
    assert reverse("admin:token_admin_address", args=[HOLDER]) in decision
    with django_capture_on_commit_callbacks() as callbacks:
        checker.post(reverse("admin:four_eyes_approve", args=[request.pk]), {"approve-reason": ""})
    assert len(callbacks) == 1
    assert run_queued("token.unfreeze") == "done"
    assert operator.contract.functions.isFrozen(HOLDER).call() is False
    queued = AdminAction.objects.get(action="token.unfreeze", outcome="queued")
    result = text(checker.get(reverse("admin:token_admin_action", args=[queued.pk])))
    assert 'data-frozen="false"' in result and str(request.pk) in result


def test_a_reverted_wipe_is_shown_as_refused_and_nothing_as_done(
    operator, login, salim, rehema, django_capture_on_commit_callbacks
):
    operator.transact(operator.minter_key, operator.contract.functions.mint(HOLDER, 3 * UNITS))
    login(salim).post(act_url("wipe"), {"address": HOLDER, "reason": "mistaken order"})
    request = DualControlRequest.objects.get(action="token_wipe")
    checker = login(rehema)
    with django_capture_on_commit_callbacks():
        checker.post(reverse("admin:four_eyes_approve", args=[request.pk]), {"approve-reason": ""})
    assert run_queued("token.wipe") == "refused"
    queued = AdminAction.objects.get(action="token.wipe", outcome="queued")
    result = text(checker.get(reverse("admin:token_admin_action", args=[queued.pk])))
    assert "Refused, nothing done:" in result
    assert f"AccountNotBlacklisted({HOLDER})" in result
    assert not AdminAction.objects.filter(action="token.wipe", outcome="done").exists()
    assert operator.contract.functions.balanceOf(HOLDER).call() == 3 * UNITS


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
def test_without_an_operator_key_the_screen_offers_the_safe_payload(
    local_safe, chain_settings, settings, login, salim
):
    grant_roles(chain_settings, local_safe.address)
    settings.SAFE_ADDRESS = local_safe.address
    settings.OPERATOR_PRIVATE_KEY = ""
    client = login(salim)
    preview = text(client.get(act_url("blacklist"), {"address": HOLDER}))
    assert 'data-lane="safe"' in preview and "OPERATOR_PRIVATE_KEY is not set" in preview
    response = client.post(act_url("blacklist"), {"address": HOLDER, "reason": "fraud"})
    action = AdminAction.objects.get(action="token.blacklist", outcome="safe_payload")
    assert response.url == reverse("admin:token_admin_action", args=[action.pk])
    result = text(client.get(response.url))
    assert "blacklist(address)" in result and HOLDER in result
    assert action.params["call"]["data"] in result
    download = client.get(reverse("admin:token_admin_batch", args=[action.pk]))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="ntzs-token-')
    batch = json.loads(download.content)
    assert batch == action.params["batch"]
    (tx,) = batch["transactions"]
    tx_hash = local_safe.exec_call(tx["to"], bytes.fromhex(tx["data"][2:]))
    assert chain_settings.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1
    assert 'data-blacklisted="true"' in text(client.get(response.url))


def test_refusals_are_shown_in_one_sentence_and_nothing_is_recorded(
    chain_settings, settings, login, salim
):
    settings.OPERATOR_PRIVATE_KEY = ""
    client = login(salim)
    response = client.post(act_url("pause"), {"reason": "  "})
    assert response.status_code == 200
    assert "Say why you pause the token (--reason)" in text(response)
    response = client.get(act_url("freeze"), {"address": "0x1234"}, follow=True)
    assert "is not an address" in text(response)
    response = client.get(act_url("freeze"), follow=True)
    assert "Name the address to freeze." in text(response)
    assert client.get(act_url("mint_everything")).status_code == 404
    assert not AdminAction.objects.exists() and not DualControlRequest.objects.exists()


def test_an_unreadable_chain_is_a_sentence_not_an_error(chain_settings, settings, login, salim):
    settings.OPERATOR_PRIVATE_KEY = ""
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    client = login(salim)
    page = client.get(PAGE, {"address": HOLDER})
    assert page.status_code == 200
    assert "could not be read from the chain" in text(page)
    preview = client.get(act_url("pause"))
    assert preview.status_code == 200 and "could not be read from the chain" in text(preview)
