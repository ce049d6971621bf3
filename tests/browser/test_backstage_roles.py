"""The token roles page in a browser, on anvil: after MINTER_ROLE is granted to a new address
and the indexer has run once, a super admin follows "Token roles" from the home page and
finds every holder the chain reports, the newcomer flagged unexpected. Screenshot:
var/screenshots/backstage-token-roles.png."""

from __future__ import annotations

from minting.breaker import rpc_breaker
from minting.chain import role_id
from reconciliation.services.matching import index_chain_run
from reconciliation.services.roles import TOKEN_ROLES
from tests.browser.support import DESKTOP, assert_layout, screenshot, staff_session_cookie
from tests.factories import super_admin
from tests.support.anvil import DEV_ADDRESSES

NEWCOMER = DEV_ADDRESSES[5]
OPERATIONAL = ("PAUSER_ROLE", "FREEZER_ROLE", "BLACKLISTER_ROLE", "WIPER_ROLE", "BURNER_ROLE")


def test_a_super_admin_finds_every_holder_and_the_unexpected_minter(
    open_tab, site, chain_settings, settings
):
    chain = chain_settings
    settings.NTZS_DEPLOY_BLOCK = chain.deploy_block
    settings.TOKEN_ROLE_EXPECTED_HOLDERS = {
        "DEFAULT_ADMIN_ROLE": [chain.admin_address.lower()],
        "MINTER_ROLE": [chain.minter_address.lower()],
        **{role: [chain.admin_address.lower()] for role in OPERATIONAL},
    }
    rpc_breaker().reset()
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

    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(super_admin(), site)])
    tab.goto(f"{site}/backstage/")
    tab.page.locator(".backstage-pages").get_by_role("link", name="Token roles").click()
    tab.page.wait_for_selector("#token-roles")

    rows = tab.page.locator("#token-roles tr.role-holder")
    shown = {
        (rows.nth(i).get_attribute("data-role"), rows.nth(i).get_attribute("data-account"))
        for i in range(rows.count())
    }
    assert shown == on_chain
    unexpected = tab.page.locator("#token-roles tr.role-unexpected")
    assert unexpected.count() == 1
    assert NEWCOMER in unexpected.inner_text()
    assert "Unexpected holder" in unexpected.inner_text()
    assert "1 unexpected role holder" in tab.page.locator("#roles-unexpected").inner_text()
    screenshot(tab.page, "backstage-token-roles")
    assert_layout(tab.page, "Backstage token roles page")
    rpc_breaker().reset()
