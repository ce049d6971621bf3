"""KYC review in Backstage, in a browser: a compliance officer approves one pending case from
the KYC list (its action, "Approve selected KYC cases") and rejects another with a reason on
its confirmation page; each decision is recorded in their name, and the customer's case says
why. Screenshots: var/screenshots/backstage-kyc-list-en.png (the pending cases),
backstage-kyc-reject-en.png (the rejection page, filled in) and
backstage-kyc-decided-en.png (the list after both decisions)."""

from __future__ import annotations

from accounts.models import KycCase
from core.models import AdminAction
from tests.browser.support import DESKTOP, assert_layout, screenshot, staff_session_cookie
from tests.factories import KycCaseFactory, compliance_officer, customer

REASON = "The photo of the ID card is unreadable; please upload a sharper one."


def _case(email: str, name: str) -> KycCase:
    return KycCaseFactory(user=customer(email=email, full_name=name))


def test_compliance_approves_one_kyc_case_and_rejects_another_with_a_reason(open_tab, site):
    neema = compliance_officer(email="neema@ntzs.test")
    zawadi = _case("zawadi@ntzs.test", "Zawadi Mrema")
    hamisi = _case("hamisi@ntzs.test", "Hamisi Omari")
    officer = open_tab(size=DESKTOP)
    officer.page.context.add_cookies([staff_session_cookie(neema, site)])

    # The KYC list, from the Backstage index.
    officer.goto(f"{site}/backstage/")
    officer.page.get_by_role("link", name="KYC cases").first.click()
    officer.page.wait_for_selector("#result_list")
    rows = officer.page.locator("#result_list tbody tr")
    assert rows.count() == 2
    screenshot(officer.page, "backstage-kyc-list-en")
    assert_layout(officer.page, "Backstage KYC list")

    # Approve Zawadi's case with the list's action.
    rows.filter(has_text="Zawadi Mrema").locator("input.action-select").check()
    officer.page.select_option("select[name=action]", "approve_cases")
    officer.page.get_by_role("button", name="Go").click()
    officer.page.wait_for_selector(".messagelist li")
    assert "1 KYC case(s) approved." in officer.page.locator(".messagelist").inner_text()
    zawadi.refresh_from_db()
    assert (zawadi.status, zawadi.reviewed_by) == ("approved", neema)

    # Reject Hamisi's case: the confirmation page names the person; the reason is required
    # by the service, so an empty one is refused in its words first.
    officer.page.locator("#result_list tbody tr", has_text="Hamisi Omari").get_by_role(
        "link", name="Reject with a reason"
    ).click()
    officer.page.wait_for_selector("form textarea[name=reason]")
    page_text = officer.page.locator("#content-main").inner_text()
    assert "Hamisi Omari" in page_text and "hamisi@ntzs.test" in page_text
    hamisi.refresh_from_db()
    assert hamisi.status == "pending"  # the page alone changes nothing
    officer.page.get_by_role("button", name="Reject the KYC case").click()
    officer.page.wait_for_selector(".messagelist .error")
    assert "A rejection needs a reason" in officer.page.locator(".messagelist").inner_text()
    hamisi.refresh_from_db()
    assert hamisi.status == "pending"

    officer.page.fill("textarea[name=reason]", REASON)
    screenshot(officer.page, "backstage-kyc-reject-en")
    assert_layout(officer.page, "Backstage KYC rejection page")
    officer.page.get_by_role("button", name="Reject the KYC case").click()
    officer.page.wait_for_selector(".messagelist .success")
    assert "KYC case of Hamisi Omari rejected." in officer.page.locator(".messagelist").inner_text()

    hamisi.refresh_from_db()
    assert (hamisi.status, hamisi.reviewed_by, hamisi.review_reason) == ("rejected", neema, REASON)
    assert set(AdminAction.objects.filter(actor=neema).values_list("action", "target_id")) == {
        ("kyc_review.approve", str(zawadi.pk)),
        ("kyc_review.reject", str(hamisi.pk)),
    }

    # The list now shows both decisions and no rejection link.
    officer.goto(f"{site}/backstage/accounts/kyccase/")
    listed = officer.page.locator("#result_list").inner_text()
    assert "Reject with a reason" not in listed
    screenshot(officer.page, "backstage-kyc-decided-en")
    assert officer.failed_requests == [] and officer.console_errors == []
