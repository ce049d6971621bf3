"""The guided minter-key rotation page (issue 15 point 5): super admins only; each step's
check follows the state of the books and of the local chain; no key is ever on the page."""

from __future__ import annotations

import json

import pytest

from backstage.key_rotation import ACTIONS
from core.models import AdminAction, DualControlRequest
from minting.chain import role_id
from minting.models import MintAttempt, SignerAccount
from tests.factories import super_admin
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

pytestmark = pytest.mark.django_db

PAGE = "/backstage/minting/key-rotation/"
OLD_KEY, OLD = DEV_PRIVATE_KEYS[1], DEV_ADDRESSES[1]
NEW_KEY, NEW = DEV_PRIVATE_KEYS[4], DEV_ADDRESSES[4]


def act(client, name: str, **data):
    """POST the action's form (its fields carry the action's name as prefix)."""
    fields = {f"{name}-{key}": value for key, value in data.items()}
    return client.post(f"{PAGE}{name}/", fields, follow=True)


def step_state(page, name: str) -> str:
    """The step's state as shown: done, to do or unknown."""
    html = page.content.decode()
    start = html.index(f'id="step-{name}"')
    state = html.index('class="step-state">', start) + len('class="step-state">')
    return html[state : html.index("</span>", state)]


def offered(page) -> set[str]:
    """The actions whose forms the page shows."""
    html = page.content.decode()
    return {name for name in ACTIONS if f'action="{PAGE}{name}/"' in html}


def no_key_on(page) -> None:
    html = page.content.decode().lower()
    for key in (OLD_KEY, NEW_KEY):
        assert key[2:].lower() not in html


def live_attempt(signer: SignerAccount, nonce: int) -> MintAttempt:
    return MintAttempt.objects.create(
        signer=signer,
        nonce=nonce,
        tx_hash=f"0x{nonce + 0xABC:064x}",
        raw_tx="0x00",
        max_fee_per_gas=4 * 10**9,
        max_priority_fee_per_gas=10**9,
        gas_limit=120_000,
        status=MintAttempt.Status.SENT,
    )


# --- Who sees it ---------------------------------------------------------------------------------


def test_only_super_admins_see_the_page_and_its_link(login, salim, neema, nmb_admin, root, client):
    assert client.get(PAGE).status_code == 302  # to the login page
    for person in (neema, nmb_admin, root):
        assert login(person).get(PAGE).status_code == 403
        assert login(person).post(f"{PAGE}stop/", {"stop-reason": "x"}).status_code == 403
        assert PAGE not in login(person).get("/backstage/").content.decode()
    assert PAGE in login(salim).get("/backstage/").content.decode()


def test_before_a_rotation_the_page_checks_the_current_key_live(login, salim, chain_settings):
    page = login(salim).get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="key-{OLD}"' in html and "(MINTER_PRIVATE_KEY)" in html
    assert 'class="role">yes' in html and 'class="can-mint">yes' in html
    no_key_on(page)

    checked = login(salim).get(PAGE, {"address": DEV_ADDRESSES[5]}).content.decode()
    assert f'id="key-{DEV_ADDRESSES[5]}"' in checked
    assert f"{DEV_ADDRESSES[5]} does not hold MINTER_ROLE" in checked


def test_an_unreadable_chain_leaves_the_chain_checks_unknown(login, salim, settings):
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = DEV_ADDRESSES[7]
    settings.MINTER_PRIVATE_KEY = OLD_KEY
    assert "could not be read" in login(salim).get(PAGE).content.decode()
    # A rotation cannot be begun without reading the new key's nonce from the chain.
    page = act(login(salim), "begin", new_address=NEW, reason="rotate")
    assert "the rotation was not begun" in page.content.decode()
    assert not AdminAction.objects.filter(action="mint.key_rotation").exists()


# --- Each step's check follows the state ------------------------------------------------------


@pytest.fixture
def superadmin_two(db):
    return super_admin(email="super2@ntzs.test", full_name="Zawadi Mrisho")


def test_each_step_shows_its_check_as_the_rotation_goes(
    login, salim, superadmin_two, chain_settings, settings
):
    chain = chain_settings
    old_signer = SignerAccount.objects.create(
        address=OLD, chain_id=31337, next_nonce=3, last_mined_nonce=2
    )
    client = login(salim)
    page = act(client, "begin", new_address=NEW, reason="yearly")
    assert "Key rotation begun" in page.content.decode()
    assert [step_state(page, s) for s in ("stop", "drain", "grant", "switch", "start")] == [
        "to do"
    ] * 5
    assert offered(page) == {"stop", "abandon"}  # the procedure is walked in order
    no_key_on(page)

    # 1: stopped; 2: an attempt of the old key in flight, listed.
    attempt = live_attempt(old_signer, 2)
    page = act(client, "stop", reason="rotating")
    assert step_state(page, "stop") == "done"
    assert step_state(page, "drain") == "to do"
    assert attempt.tx_hash in page.content.decode()
    assert offered(page) == {"grant", "abandon"}  # the grant's second person may take a while
    attempt_status = MintAttempt.Status.REPLACED  # settled (as confirm_mints would)
    MintAttempt.objects.filter(pk=attempt.pk).update(status=attempt_status)
    page = client.get(PAGE)
    assert step_state(page, "drain") == "done"

    # 3: the grant is a four-eyes request; once the role is on chain the step is done.
    page = act(client, "grant", reason="new key")
    request = DualControlRequest.objects.get(action="token_grant_minter", target_id=NEW)
    assert f"approve request {request.pk}" in page.content.decode()
    chain.transact(chain.admin_key, chain.contract.functions.grantRole(role_id("MINTER_ROLE"), NEW))
    assert step_state(client.get(PAGE), "grant") == "done"

    # 4: the configured key; 5: refused before the switch, done after the start.
    page = act(client, "start", reason="go")
    assert "MINTER_PRIVATE_KEY is not the new key" in page.content.decode()
    assert step_state(page, "switch") == "to do"
    settings.MINTER_PRIVATE_KEY = NEW_KEY
    page = act(client, "start", reason="go")
    assert "Minting is started with" in page.content.decode()
    assert step_state(page, "switch") == "done" and step_state(page, "start") == "done"
    assert SignerAccount.objects.get(address=NEW).sending_enabled

    # 6: without an operator key the revoke is a Safe payload, downloadable.
    settings.OPERATOR_PRIVATE_KEY = ""
    page = act(client, "revoke", reason="retired")
    assert "Execute the Safe payload" in page.content.decode()
    action = AdminAction.objects.get(action="token.revoke_minter", outcome="safe_payload")
    download = client.get(f"{PAGE}payload/{action.pk}/")
    batch = json.loads(download.content)
    assert batch["transactions"][0]["contractMethod"]["name"] == "revokeRole"
    assert batch["transactions"][0]["contractInputsValues"]["account"] == OLD
    assert step_state(page, "revoke") == "to do"
    revoke = chain.contract.functions.revokeRole(role_id("MINTER_ROLE"), OLD)
    chain.transact(chain.admin_key, revoke)
    page = client.get(PAGE)
    assert step_state(page, "revoke") == "done"
    # 7: waits for a mint signed by the new key (none yet); finishing is refused.
    assert step_state(page, "confirm") == "to do"
    assert "Waiting for a mint signed by the new key" in page.content.decode()
    page = act(client, "finish", reason="done")
    assert "The rotation is not finished: step 7" in page.content.decode()
    no_key_on(page)


def test_abandoning_closes_the_rotation(login, salim, chain_settings):
    client = login(salim)
    act(client, "begin", new_address=NEW, reason="yearly")
    page = act(client, "abandon", reason="wrong key")
    assert "abandoned" in page.content.decode()
    assert 'id="rotation-begin"' in page.content.decode()
