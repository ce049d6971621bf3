"""Reconciliation in Backstage, in a browser, on anvil: a mint made directly on the contract
with an admin key holding MINTER_ROLE is listed as untracked after one indexer run; a super
admin records a ``test_mint`` entry for it from its row (the form prefilled from the log), a
second super admin approves it from "Waiting for me", and the mint leaves the untracked list
(its log is claimed by the entry). Screenshot: var/screenshots/backstage-reconciliation-en.png
(the page with the untracked mint, an unexplained burn and the request waiting)."""

from __future__ import annotations

from minting.breaker import rpc_breaker
from minting.chain import role_id
from minting.models import MintLogClaim
from reconciliation.models import ReconciliationEntry
from reconciliation.selectors import untracked_mints
from reconciliation.services.matching import index_chain_run
from tests.browser.support import DESKTOP, assert_layout, screenshot, staff_session_cookie
from tests.factories import super_admin
from tests.support.anvil import DEV_ADDRESSES

UNITS = 10**18
OUTSIDER = DEV_ADDRESSES[5]


def _tab(open_tab, site, user):
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(user, site)])
    return tab


def _outside_mint_and_burn(chain) -> str:
    """A test mint of 250 nTZS made with the admin key to an outsider, and the admin key
    burning 1.5 nTZS of its own (minted to it first: two untracked mints, one burn)."""
    chain.transact(
        chain.admin_key,
        chain.contract.functions.grantRole(role_id("MINTER_ROLE"), chain.admin_address),
    )
    admin = chain.admin_address
    chain.transact(chain.admin_key, chain.contract.functions.mint(admin, 2 * UNITS))
    chain.transact(chain.admin_key, chain.contract.functions.burn(admin, 3 * UNITS // 2))
    receipt = chain.transact(chain.admin_key, chain.contract.functions.mint(OUTSIDER, 250 * UNITS))
    return "0x" + bytes(receipt["transactionHash"]).hex()


def test_a_test_mint_entry_made_by_one_super_admin_and_approved_by_another_clears_it(
    open_tab, site, chain_settings, settings
):
    settings.NTZS_DEPLOY_BLOCK = chain_settings.deploy_block
    settings.MINT_CONFIRMATIONS = 1
    rpc_breaker().reset()
    salim = super_admin(email="salim@ntzs.test")
    khamis = super_admin(email="khamis@ntzs.test", full_name="Khamis Ali")
    tx_hash = _outside_mint_and_burn(chain_settings)
    index_chain_run()
    assert tx_hash in [log.tx_hash for log in untracked_mints()]
    assert len(untracked_mints()) == 2

    # The maker: from the home page to the row, the form prefilled from the log.
    maker = _tab(open_tab, site, salim)
    maker.goto(f"{site}/backstage/")
    maker.page.locator(".backstage-pages").get_by_role("link", name="Reconciliation").click()
    maker.page.wait_for_selector("#untracked-mints")
    row = maker.page.locator("#untracked-mints tr.untracked-mint", has_text=tx_hash)
    assert "250" in row.inner_text()
    assert maker.page.locator("#unexplained-burns tr.unexplained-burn").count() == 1
    row.get_by_role("link", name="Record an entry").click()
    maker.page.wait_for_selector("#entry-log")
    assert maker.page.input_value("#id_amount_units") == str(250 * UNITS)
    assert maker.page.input_value("#id_tx_hash") == tx_hash
    maker.page.select_option("#id_entry_type", "test_mint")
    maker.page.fill("#id_reason", "smoke test of the admin key after the role rotation")
    maker.page.fill("#id_evidence", "ticket OPS-31, minted by Salim at 10:05")
    maker.page.get_by_role("button", name="Ask a second super admin").click()
    maker.page.wait_for_selector(".messagelist .success")
    assert "Entry requested" in maker.page.locator(".messagelist").inner_text()
    waiting = maker.page.locator("#untracked-mints tr.untracked-mint", has_text=tx_hash)
    assert "waiting for a checker" in waiting.inner_text()
    assert maker.page.locator("#reconciliation-pending").count() == 1
    screenshot(maker.page, "backstage-reconciliation-en")
    assert_layout(maker.page, "Backstage reconciliation page")
    assert ReconciliationEntry.objects.count() == 0  # nothing before the checker

    # The checker: Waiting for me, the request (the chain read again), approval.
    checker = _tab(open_tab, site, khamis)
    checker.goto(f"{site}/backstage/four-eyes/")
    checker.page.get_by_role("link", name="Review").click()
    checker.page.wait_for_selector("#four-eyes-prepare")
    checker.page.fill("#id_approve-reason", "seen on the explorer")
    checker.page.get_by_role("button", name="Approve").click()
    checker.page.wait_for_selector(".messagelist .success")

    entry = ReconciliationEntry.objects.get()
    assert (entry.entry_type, entry.amount_units) == ("test_mint", 250 * UNITS)
    assert (entry.created_by, entry.approved_by) == (salim, khamis)
    assert MintLogClaim.objects.get(tx_hash=tx_hash).reconciliation_entry_id == entry.pk
    checker.goto(f"{site}/backstage/reconciliation/")
    assert checker.page.locator("#untracked-mints tr.untracked-mint").count() == 1
    assert tx_hash not in checker.page.locator("#untracked-mints").inner_text()
    assert tx_hash not in [log.tx_hash for log in untracked_mints()]
    assert maker.failed_requests == [] and maker.console_errors == []
    assert checker.failed_requests == [] and checker.console_errors == []
