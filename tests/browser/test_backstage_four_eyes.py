"""The four-eyes queue in a browser: a maker's manual ZenoPay confirmation, approved from the
queue by a different compliance officer after reading ZenoPay's fresh answer (the live
server's sandbox, over HTTP); the maker finds no approve button on their own request, and a
POST forged from their page is refused in the service's words. Screenshots:
var/screenshots/backstage-four-eyes-en.png (the decision page with ZenoPay's answer) and
backstage-four-eyes-queue-en.png (the queue)."""

from __future__ import annotations

from deposits.sandbox.services import sandbox_knobs_set
from deposits.services.operator import deposit_confirm_manual_request
from tests.browser.support import (
    DESKTOP,
    assert_layout,
    bank_create,
    deposit_status,
    deposit_zenopay,
    screenshot,
    staff_session_cookie,
)
from tests.factories import KycCaseFactory, WalletFactory, compliance_officer, customer


def _pushed_deposit():
    bank_create(name="CRDB (ZenoPay settlement)", is_zenopay_settlement=True)
    amina = customer(email="amina@ntzs.test", phone="+255712345678")
    KycCaseFactory(user=amina, approved=True)
    wallet = WalletFactory(user=amina, verified=True)
    return deposit_zenopay(user=amina, wallet=wallet, amount=5_000)


def _request(deposit, maker, transid: str):
    return deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid=transid,
        amount_tzs=deposit.amount_tzs,
        phone="0712345678",
        evidence="Seen on the ZenoPay dashboard at 10:02, M-Pesa",
        maker=maker,
    )


def test_a_checker_approves_a_manual_confirmation_from_the_queue_after_zenopays_answer(
    open_tab, site
):
    neema = compliance_officer(email="neema@ntzs.test")
    rehema = compliance_officer(email="rehema@ntzs.test", full_name="Rehema Ally")
    deposit = _pushed_deposit()
    sandbox_knobs_set(empty_data_polls=5)  # the runbook's "order-status is empty"
    request = _request(deposit, neema, "TXDASH77")

    # The maker: no approve button on their own request; a forged POST is refused.
    maker = open_tab(size=DESKTOP)
    maker.page.context.add_cookies([staff_session_cookie(neema, site)])
    maker.goto(f"{site}/backstage/four-eyes/{request.pk}/")
    assert maker.page.get_by_role("button", name="Approve").count() == 0
    assert maker.page.get_by_role("button", name="Withdraw").count() == 1
    maker.page.evaluate(
        "form => { form.action = form.action.replace('withdraw/', 'approve/'); form.submit(); }",
        maker.page.locator("form[action$='/withdraw/']").element_handle(),
    )
    maker.page.wait_for_selector(".messagelist .error")
    assert "different person from the maker" in maker.page.locator(".messagelist").inner_text()
    assert deposit_status(deposit) == "submitted"

    # The checker: the queue, the request with ZenoPay's answer, then approval.
    checker = open_tab(size=DESKTOP)
    checker.page.context.add_cookies([staff_session_cookie(rehema, site)])
    checker.goto(f"{site}/backstage/")
    checker.page.get_by_role("link", name="Waiting for me").click()
    checker.page.wait_for_selector("#four-eyes-waiting")
    screenshot(checker.page, "backstage-four-eyes-queue-en")
    checker.page.get_by_role("link", name="Review").click()
    checker.page.wait_for_selector("#four-eyes-prepare")
    assert "TXDASH77" in checker.page.locator("#four-eyes-what").inner_text()
    answer = checker.page.locator("#four-eyes-prepare").inner_text()
    assert "no_data" in answer and "True" in answer
    screenshot(checker.page, "backstage-four-eyes-en")
    assert_layout(checker.page, "Backstage four-eyes decision page")

    checker.page.fill("#id_approve-reason", "matches the dashboard")
    checker.page.get_by_role("button", name="Approve").click()
    checker.page.wait_for_selector(".messagelist .success")

    assert "Approved" in checker.page.locator(".messagelist").inner_text()
    assert "Nothing is waiting for you." in checker.page.content()
    assert deposit_status(deposit) in ("mint_pending", "mint_processing", "minted")
    assert checker.failed_requests == [] and checker.console_errors == []
