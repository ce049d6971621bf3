"""Operations views in a browser: a compliance officer acknowledges an alert with a note from
the alerts list (the alert stays open, listed as acknowledged), then finds the
acknowledgement in the audit log, filtered by action. Screenshots:
var/screenshots/backstage-alert-acknowledge-en.png (the note form),
backstage-alerts-en.png (the list after the acknowledgement) and backstage-audit-log-en.png
(the audit log filtered by action)."""

from __future__ import annotations

from core.models import AdminAction, Alert
from core.services import admin_action_record, alert_raise
from tests.browser.support import DESKTOP, assert_layout, screenshot, staff_session_cookie
from tests.factories import compliance_officer, super_admin


def test_a_compliance_officer_acknowledges_an_alert_with_a_note(open_tab, site):
    neema = compliance_officer()
    salim = super_admin()
    gas, _ = alert_raise(kind="minter gas low", detail="0.0004 ETH left on the minter")
    alert_raise(kind="task silent", key="minting.tasks.confirm_mints", detail="last ran 900 s ago")
    resolved, _ = alert_raise(kind="cap above 90% used", detail="91 % of today's cap used")
    Alert.objects.filter(pk=resolved.pk).update(resolved_at=resolved.last_seen)
    admin_action_record(
        actor=salim,
        action="minting_stop",
        target_type="signer",
        target_id="minter",
        reason="key rotation",
    )
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(neema, site)])

    tab.goto(f"{site}/backstage/core/alert/")
    row = tab.page.locator("#result_list tbody tr", has_text="0.0004 ETH left")
    row.get_by_role("link", name="Acknowledge…").click()
    tab.page.wait_for_selector("textarea[name=note]")
    assert "What will happen" in tab.page.locator("#content-main").inner_text()
    screenshot(tab.page, "backstage-alert-acknowledge-en")
    tab.page.fill("textarea[name=note]", "Topping up the minter from the treasury wallet.")
    tab.page.get_by_role("button", name="Acknowledge").click()
    tab.page.wait_for_selector(".messagelist .success")
    screenshot(tab.page, "backstage-alerts-en")

    assert "acknowledged" in tab.page.locator(".messagelist").inner_text()
    row = tab.page.locator("#result_list tbody tr", has_text="0.0004 ETH left")
    assert "Topping up the minter from the treasury wallet." in row.inner_text()
    assert row.locator(".alert-acknowledged").count() == 1
    rows = tab.page.locator("#result_list tbody tr").all_inner_texts()
    assert "last ran 900 s ago" in rows[0]  # still open, not acknowledged: first
    assert "91 % of today" in rows[-1]  # resolved: kept, last
    gas.refresh_from_db()
    assert (gas.acknowledged_by, gas.resolved_at) == (neema, None)
    assert_layout(tab.page, "Backstage alerts list")

    tab.goto(f"{site}/backstage/core/adminaction/")
    tab.page.locator("#changelist-filter").get_by_role("link", name="alert_acknowledge").click()
    tab.page.wait_for_url("**action=alert_acknowledge**")
    screenshot(tab.page, "backstage-audit-log-en")

    listed = tab.page.locator("#result_list tbody").inner_text()
    assert "alert_acknowledge" in listed and "neema@ntzs.test" in listed
    assert "minting_stop" not in listed
    assert AdminAction.objects.filter(action="alert_acknowledge", actor=neema).count() == 1
    assert_layout(tab.page, "Backstage audit log")
    assert tab.console_errors == []
    assert tab.failed_requests == []
