"""Incidents in Backstage, in a browser, on anvil: a mint made directly on the contract is
indexed and raises the untracked-mint alert; a compliance officer opens an incident from the
alert's page (the transaction and recipient prefilled), a super admin pauses the token
(Safe-payload lane), the officer links that pause from the recent token actions, adds a note
and marks the incident contained; the printable report shows it all under the CSP (no console
error). Screenshots: var/screenshots/backstage-incident.png (the incident with its timeline)
and backstage-incident-report.png (the report as printed)."""

from __future__ import annotations

from backstage.models import Incident
from core.alerts import UNTRACKED_MINT
from core.models import Alert
from minting.breaker import rpc_breaker
from minting.chain import role_id
from minting.services.token_admin import token_pause
from reconciliation.services.matching import index_chain_run
from tests.browser.support import DESKTOP, assert_layout, screenshot, staff_session_cookie
from tests.factories import compliance_officer, super_admin
from tests.support.anvil import DEV_ADDRESSES

UNITS = 10**18
OUTSIDER = DEV_ADDRESSES[5]


def test_an_incident_opened_from_an_untracked_mint_alert_collects_the_pause_and_a_note(
    open_tab, site, chain_settings, settings
):
    settings.NTZS_DEPLOY_BLOCK = chain_settings.deploy_block
    settings.MINT_CONFIRMATIONS = 1
    settings.OPERATOR_PRIVATE_KEY = ""
    rpc_breaker().reset()
    chain = chain_settings
    chain.transact(
        chain.admin_key,
        chain.contract.functions.grantRole(role_id("MINTER_ROLE"), chain.admin_address),
    )
    receipt = chain.transact(chain.admin_key, chain.contract.functions.mint(OUTSIDER, 500 * UNITS))
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    index_chain_run()
    alert = Alert.objects.get(kind=UNTRACKED_MINT)
    neema = compliance_officer(email="neema@ntzs.test", full_name="Neema Mushi")
    salim = super_admin(email="salim@ntzs.test")

    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(neema, site)])
    tab.goto(f"{site}/backstage/core/alert/{alert.pk}/change/")
    tab.page.get_by_role("link", name="Open incident").click()
    tab.page.wait_for_selector("#incident-from-alert")
    assert tab.page.input_value("#id_tx_hash") == tx_hash
    assert tab.page.input_value("#id_impacted_addresses") == OUTSIDER
    assert tab.page.input_value("#id_severity") == "high"
    assert tab.page.input_value("#id_funds_at_risk_tzs") == ""  # not yet known, not 0
    tab.page.fill("#id_funds_at_risk_tzs", "500")
    tab.page.select_option("#id_severity", "critical")
    tab.page.get_by_role("button", name="Open the incident").click()
    tab.page.wait_for_selector("#incident-timeline")
    incident = Incident.objects.get()
    assert incident.reference in tab.page.locator("#incident-fields").inner_text()
    assert tab.page.locator("#incident-funds-lost").inner_text() == "not yet known"

    pause = token_pause(actor=salim, reason=f"{incident.reference}: untracked mint")
    tab.page.reload()
    tab.page.select_option("#link-action", str(pause.action_id))
    tab.page.get_by_role("button", name="Link the action").click()
    tab.page.wait_for_selector(".messagelist .success")
    tab.page.fill("#incident-note textarea", "The admin key's holder confirms a mistaken test.")
    tab.page.get_by_role("button", name="Add the note").click()
    tab.page.wait_for_selector(".messagelist .success")
    tab.page.get_by_role("button", name="Mark contained").click()
    tab.page.wait_for_selector(".incident-status-contained")

    rows = tab.page.locator("#incident-timeline tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert len(texts) == 5, texts
    assert texts[0].split("\t")[1].startswith("Alert raised: untracked mint")
    assert "Incident " + incident.reference + " opened" in texts[1]
    assert "token.pause on token" in texts[2]
    assert "mistaken test" in texts[3]
    assert "Status open → contained" in texts[4]
    screenshot(tab.page, "backstage-incident")
    assert_layout(tab.page, "Backstage incident page")

    tab.page.get_by_role("link", name="Printable report").click()
    tab.page.wait_for_selector("body.incident-report")
    report = tab.page.locator("body").inner_text()
    tab.page.emulate_media(media="print")
    screenshot(tab.page, "backstage-incident-report")
    assert "500 TZS" in report and "not yet known" in report and "token.pause" in report
    assert tab.console_errors == [] and tab.failed_requests == []
