"""Backstage in a browser: the index of a compliance officer at desktop width, with the
environment and open-alerts banners, under the site's Content-Security-Policy (no refused
style or script). Screenshot: var/screenshots/backstage-index-en.png."""

from __future__ import annotations

from core.models import Alert
from minting.chain import account_address
from minting.models import SignerAccount
from tests.browser.support import DESKTOP, assert_layout, screenshot, staff_session_cookie
from tests.factories import compliance_officer, super_admin
from tests.support.anvil import DEV_PRIVATE_KEYS


def test_the_backstage_index_shows_both_banners_at_desktop_width(open_tab, site):
    neema = compliance_officer()
    Alert.objects.create(kind="minter gas low", detail="0.0004 ETH left")
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(neema, site)])

    tab.goto(f"{site}/backstage/")
    screenshot(tab.page, "backstage-index-en")

    assert tab.page.locator(".backstage-env-name").inner_text() == "LOCAL"
    assert "1 open alert" in tab.page.locator(".backstage-alerts").inner_text()
    assert tab.page.get_by_role("link", name="Deposits").count() >= 1
    assert_layout(tab.page, "Backstage index")
    assert tab.console_errors == []
    assert tab.failed_requests == []


def test_a_super_admin_stops_and_starts_minting_from_the_minting_page(
    open_tab, site, settings, chain_settings
):
    settings.MINTER_PRIVATE_KEY = DEV_PRIVATE_KEYS[1]
    signer = SignerAccount.objects.create(
        address=account_address(DEV_PRIVATE_KEYS[1]), chain_id=31337, next_nonce=4
    )
    salim = super_admin()
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(salim, site)])

    tab.goto(f"{site}/backstage/minting/")
    screenshot(tab.page, "backstage-minting-en")
    assert_layout(tab.page, "Backstage minting page")
    tab.page.fill("#id_stop-reason", "key rotation")
    tab.page.get_by_role("button", name="Stop minting").click()
    tab.page.wait_for_selector(".messagelist .success")

    assert "Minting is stopped" in tab.page.locator(".messagelist").inner_text()
    signer.refresh_from_db()
    assert not signer.sending_enabled

    # Start: the nonce ledger is resynced from the chain's pending nonce of the minter key.
    chain_nonce = chain_settings.w3.eth.get_transaction_count(signer.address, "pending")
    tab.page.fill("#id_start-reason", "rotation done")
    tab.page.get_by_role("button", name="Start minting").click()
    tab.page.wait_for_selector(".messagelist .success")
    assert "Minting is started; the nonce ledger is resynced" in (
        tab.page.locator(".messagelist").inner_text()
    )
    signer.refresh_from_db()
    assert signer.sending_enabled and signer.next_nonce == chain_nonce
    assert tab.failed_requests == [] and tab.console_errors == []
