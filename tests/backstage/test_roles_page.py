"""The token roles page in Backstage (issue 15 point 4, DESIGN §9: super admins only): on the
local chain it lists every holder the chain reports, a MINTER_ROLE granted to a new address
marked unexpected; an unreadable chain is said on the page; other staff are refused and do
not see the link."""

from __future__ import annotations

import re

import pytest

from minting.breaker import rpc_breaker
from minting.chain import role_id
from reconciliation.models import IndexerCursor
from reconciliation.services.matching import index_chain_run
from reconciliation.services.roles import TOKEN_ROLES
from tests.support.anvil import DEV_ADDRESSES, free_loopback_port

pytestmark = pytest.mark.django_db

PAGE = "/backstage/token-roles/"
HOME = "/backstage/"
NEWCOMER = DEV_ADDRESSES[5]
OPERATIONAL = ("PAUSER_ROLE", "FREEZER_ROLE", "BLACKLISTER_ROLE", "WIPER_ROLE", "BURNER_ROLE")


@pytest.fixture
def roles_chain(chain_settings, settings):
    """The session's token indexed from its deploy block; the deployment's holders expected."""
    settings.NTZS_DEPLOY_BLOCK = chain_settings.deploy_block
    settings.TOKEN_ROLE_EXPECTED_HOLDERS = {
        "DEFAULT_ADMIN_ROLE": [chain_settings.admin_address.lower()],
        "MINTER_ROLE": [chain_settings.minter_address.lower()],
        **{role: [chain_settings.admin_address.lower()] for role in OPERATIONAL},
    }
    rpc_breaker().reset()
    yield chain_settings
    rpc_breaker().reset()


HOLDER_ROW = re.compile(
    r'<tr class="(role-holder[^"]*)" data-role="([A-Z_]+)" data-account="(0x[0-9a-fA-F]{40})"'
)


def holder_rows(html: str) -> dict[tuple[str, str], str]:
    """(role, account) -> the row's class attribute, for every holder row on the page."""
    return {(role, account): classes for classes, role, account in HOLDER_ROW.findall(html)}


def test_the_page_lists_every_holder_the_chain_reports_the_newcomer_unexpected(
    roles_chain, login, salim
):
    chain = roles_chain
    chain.transact(
        chain.admin_key, chain.contract.functions.grantRole(role_id("MINTER_ROLE"), NEWCOMER)
    )
    index_chain_run()
    on_chain = {
        (role, address)
        for role in TOKEN_ROLES
        for address in DEV_ADDRESSES
        if chain.contract.functions.hasRole(role_id(role), address).call()
    }

    page = login(salim).get(PAGE)

    assert page.status_code == 200
    html = page.content.decode()
    rows = holder_rows(html)
    assert set(rows) == on_chain
    assert ("MINTER_ROLE", NEWCOMER) in rows
    unexpected = {pair for pair, classes in rows.items() if "role-unexpected" in classes}
    assert unexpected == {("MINTER_ROLE", NEWCOMER)}
    assert 'id="roles-unexpected"' in html
    assert "Unexpected holder: not among the expected holders of this role." in html
    cursor = IndexerCursor.objects.get(name="roles")
    assert re.search(rf'id="roles-cursor">{cursor.block_number} ·', html)


def test_an_unreadable_chain_is_said_on_the_page(roles_chain, login, salim, settings):
    index_chain_run()
    settings.BASE_SEPOLIA_RPC_URL = f"http://127.0.0.1:{free_loopback_port()}"  # nobody there

    page = login(salim).get(PAGE)

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="roles-chain-error"' in html
    assert "none is confirmed" in html
    assert ("MINTER_ROLE", roles_chain.minter_address) in holder_rows(html)  # from the events
    assert "Not confirmed on chain: the chain could not be read." in html


@pytest.mark.parametrize("persona", ["neema", "nmb_admin", "root"])
def test_only_super_admins_open_the_page_or_see_its_link(login, salim, persona, request):
    other = request.getfixturevalue(persona)
    assert login(other).get(PAGE).status_code == 403
    assert 'href="/backstage/token-roles/"' not in login(other).get(HOME).content.decode()
    assert 'href="/backstage/token-roles/"' in login(salim).get(HOME).content.decode()
