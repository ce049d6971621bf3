"""Token administration in a browser: a super admin pauses the token from Backstage with the
operator key configured; the page queues it (nothing sent by the web request), the worker's
task runs, and the pages show the token paused as read back from the contract. Screenshots:
var/screenshots/backstage-token-admin.png (the token page after the pause),
backstage-token-admin-confirm.png and backstage-token-admin-result.png."""

from __future__ import annotations

from core.models import AdminAction
from minting.chain import role_id
from tests.browser.support import (
    DESKTOP,
    assert_layout,
    run_queued_tasks,
    screenshot,
    staff_session_cookie,
)
from tests.factories import super_admin
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

OPERATOR_KEY, OPERATOR = DEV_PRIVATE_KEYS[7], DEV_ADDRESSES[7]


def test_a_super_admin_pauses_the_token_and_the_page_shows_it_paused_read_back(
    open_tab, site, chain_settings, settings
):
    chain = chain_settings
    chain.transact(
        chain.admin_key, chain.contract.functions.grantRole(role_id("PAUSER_ROLE"), OPERATOR)
    )
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    salim = super_admin()
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(salim, site)])

    # From Backstage's home to the token page: the state read from the contract.
    tab.goto(f"{site}/backstage/")
    tab.page.locator('a[href="/backstage/token/"]').first.click()
    tab.page.wait_for_selector("#token-state")
    assert tab.page.locator("#token-state .token-paused").get_attribute("data-paused") == "false"

    # The confirmation: the exact call and the lane; then the pause with its reason.
    tab.page.get_by_role("button", name="Pause the token…").click()
    tab.page.wait_for_selector("#token-act-what")
    assert "pause()" in tab.page.locator(".safe-call").inner_text()
    assert tab.page.locator("#token-act-lane").get_attribute("data-lane") == "operator"
    tab.page.fill("#id_reason", "Suspicious mint at block 42: contain first")
    screenshot(tab.page, "backstage-token-admin-confirm")
    assert_layout(tab.page, "Backstage token action confirmation")
    tab.page.get_by_role("button", name="Pause the token", exact=True).click()

    # Queued for the worker: nothing has been sent by the web request.
    tab.page.wait_for_selector("#token-result.token-result-waiting")
    assert chain.contract.functions.paused().call() is False
    assert AdminAction.objects.filter(action="token.pause", outcome="queued").count() == 1

    # The worker runs the task; the result page shows the chain of rows and the state.
    assert "minting.tasks.token_admin_execute" in run_queued_tasks()
    assert chain.contract.functions.paused().call() is True
    tab.page.reload()
    tab.page.wait_for_selector("#token-result.token-result-done")
    outcomes = tab.page.locator("tr.token-execution").evaluate_all(
        "rows => rows.map(r => r.dataset.outcome)"
    )
    assert outcomes == ["queued", "signed", "sent", "done"]
    now = tab.page.locator("#token-state-now .token-paused")
    assert now.get_attribute("data-paused") == "true"
    screenshot(tab.page, "backstage-token-admin-result")
    assert_layout(tab.page, "Backstage token action result")

    tab.goto(f"{site}/backstage/token/")
    assert tab.page.locator("#token-state .token-paused").get_attribute("data-paused") == "true"
    assert "done" in tab.page.locator("tr.token-recent-action").first.inner_text()
    screenshot(tab.page, "backstage-token-admin")
    assert_layout(tab.page, "Backstage token administration")
    assert tab.failed_requests == [] and tab.console_errors == []
