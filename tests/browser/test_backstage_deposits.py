"""A bank transfer approved in Backstage, in a browser: the bank admin of the customer's bank
confirms the transfer on its confirmation page with the amount received and the bank's
reference, a compliance officer gives the platform approval, the worker mints it, and the
deposit's page shows the whole story. Screenshots: var/screenshots/backstage-deposit-detail-en.png
(the detail of the minted deposit), backstage-deposit-bank-approval-en.png (the confirmation
page, filled in)."""

from __future__ import annotations

from deposits.models import BankStaff, DepositApproval, DepositRequest
from tests.browser.support import (
    DESKTOP,
    assert_layout,
    bank_create,
    deposit_bank,
    deposit_status,
    run_tasks_until,
    screenshot,
    settle_minting,
    staff_session_cookie,
)
from tests.factories import (
    KycCaseFactory,
    WalletFactory,
    bank_admin,
    compliance_officer,
    customer,
)


def _staff_tab(open_tab, site, user):
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(user, site)])
    return tab


def test_a_bank_admin_confirms_a_transfer_compliance_approves_it_and_it_is_minted(
    open_tab, site, chain_settings, settings
):
    settle_minting(settings)
    bank_create(name="CRDB (ZenoPay settlement)", is_zenopay_settlement=True)
    nmb = bank_create(name="NMB", account_name="nTZS Ltd", account_number="2041100077")
    amina = customer(email="amina@ntzs.test", phone="+255712345678")
    KycCaseFactory(user=amina, approved=True)
    wallet = WalletFactory(user=amina, verified=True)
    deposit = deposit_bank(user=amina, wallet=wallet, bank=nmb, amount=5_000)
    baraka = bank_admin(email="baraka@nmb.ntzs.test")
    BankStaff.objects.create(user=baraka, bank=nmb)
    neema = compliance_officer(email="neema@ntzs.test")
    detail = f"/backstage/deposits/depositrequest/{deposit.pk}/change/"

    # The bank admin: the confirmation page, then the amount and the bank's reference.
    bank = _staff_tab(open_tab, site, baraka)
    bank.goto(detail)
    bank.page.get_by_role("link", name="Bank approval: fiat received").click()
    bank.page.wait_for_selector(".deposit-action-explain")
    assert "TSh 5,000" in bank.page.locator(".deposit-summary").inner_text()
    assert DepositApproval.objects.count() == 0  # the page alone changes nothing
    bank.page.fill("#id_amount_received_tzs", "5000")
    bank.page.fill("#id_bank_reference", "NMB-TT-20261202-001")
    screenshot(bank.page, "backstage-deposit-bank-approval-en")
    assert_layout(bank.page, "Backstage bank approval page")
    bank.page.get_by_role("button", name="Bank approval: fiat received").click()
    bank.page.wait_for_selector(".messagelist .success")
    assert "waits for the other approval" in bank.page.locator(".messagelist").inner_text()
    assert deposit_status(deposit) == "submitted"
    assert bank.failed_requests == [] and bank.console_errors == []

    # Compliance: the platform approval confirms the payment; the worker mints it.
    officer = _staff_tab(open_tab, site, neema)
    officer.goto(detail)
    officer.page.get_by_role("link", name="Platform approval").click()
    officer.page.wait_for_selector(".deposit-action-explain")
    assert "NMB-TT-20261202-001" in officer.page.locator(".deposit-action-explain").inner_text()
    officer.page.get_by_role("button", name="Platform approval").click()
    officer.page.wait_for_selector(".messagelist .success")
    assert "mint_pending" in officer.page.locator(".messagelist").inner_text()
    run_tasks_until(lambda: deposit_status(deposit) == "minted")

    officer.goto(detail)
    screenshot(officer.page, "backstage-deposit-detail-en")
    minted = DepositRequest.objects.get(pk=deposit.pk)
    transitions = officer.page.locator("#facts-transitions + table").inner_text()
    assert "minted" in transitions and "mint_pending" in transitions
    assert minted.mint_tx_hash in officer.page.locator("#facts-mint + table").inner_text()
    admin_actions = officer.page.locator("#facts-admin-actions + table").inner_text()
    assert "deposit.bank_approved" in admin_actions and "deposit.platform_approved" in admin_actions
    assert_layout(officer.page, "Backstage deposit detail")
    assert officer.failed_requests == [] and officer.console_errors == []
