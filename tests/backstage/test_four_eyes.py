"""The four-eyes queue in Backstage ("Waiting for me"): the pending requests a person may
decide, the decision page with ZenoPay's fresh answer before approving, approve / reject /
withdraw through core.services, and the services' own refusals through forged POSTs.
ZenoPay is the project's sandbox, reached in-process over HTTP."""

from __future__ import annotations

import pytest

from accounts.services.staff import staff_role_grant_request
from core.models import AdminAction, DualControlRequest
from core.roles import PLATFORM_COMPLIANCE
from deposits.models import DepositRequest, PaymentNotification
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.operator import deposit_confirm_manual_request
from deposits.services.payments import payment_initiate
from tests.factories import KycCaseFactory, WalletFactory, compliance_officer, super_admin

pytestmark = pytest.mark.django_db

QUEUE = "/backstage/four-eyes/"
PHONE = "+255712345678"


def _page(request) -> str:
    return f"{QUEUE}{request.pk}/"


@pytest.fixture
def rehema(db):
    """A second compliance officer: the checker of neema's requests."""
    return compliance_officer(email="rehema@ntzs.test", full_name="Rehema Ally")


def _mobile_deposit(user, amount: int = 5_000) -> DepositRequest:
    deposit, _created = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider=DepositRequest.Provider.ZENOPAY,
            wallet_id=user.test_wallet.pk,
            buyer_phone=PHONE,
            bank_id=None,
        ),
    )
    assert payment_initiate(deposit_id=deposit.pk) == "requested"
    return deposit


@pytest.fixture
def pushed(amina, zenopay_sandbox):
    """Amina's mobile-money deposit whose push was sent; ZenoPay's order-status then answers
    with empty data (the runbook's "order-status is empty or unreliable")."""
    deposit = _mobile_deposit(amina)
    zenopay_sandbox.knobs(empty_data_polls=10)
    return deposit


def _manual_request(deposit, maker, transid: str = "TXDASH77"):
    return deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid=transid,
        amount_tzs=deposit.amount_tzs,
        phone="0712345678",
        evidence="Seen on the ZenoPay dashboard at 10:02, M-Pesa",
        maker=maker,
    )


def test_a_colleague_sees_the_request_with_zenopays_answer_and_approving_confirms_the_deposit(
    login, neema, rehema, pushed
):
    request = _manual_request(pushed, neema)
    client = login(rehema)

    queue = client.get(QUEUE).content.decode()
    assert f'href="{_page(request)}"' in queue
    assert "deposit_confirm_manual" in queue and "neema@ntzs.test" in queue

    page = client.get(_page(request))
    body = page.content.decode()
    assert page.status_code == 200
    assert "TXDASH77" in body and "Seen on the ZenoPay dashboard at 10:02" in body
    # ZenoPay's fresh answer (the prepare step), shown before approving: it holds no data.
    assert 'id="four-eyes-prepare"' in body
    assert '<th scope="row">no_data</th><td class="mono">True</td>' in body
    assert "ZenoPay holds no payment data for this order" in body
    assert "amina@ntzs.test" in body  # the deposit it credits, as it stands
    assert f'action="{_page(request)}approve/"' in body
    preview = PaymentNotification.objects.get(deposit=pushed, kind="order_status")
    assert preview.outcome == "ignored"  # the preview's answer never waits for an outcome

    done = client.post(f"{_page(request)}approve/", {"approve-reason": "matches"}, follow=True)

    pushed.refresh_from_db()
    request.refresh_from_db()
    assert (pushed.status, pushed.psp_reference) == ("mint_pending", "TXDASH77")
    assert pushed.fiat_confirmed_by == rehema
    assert (request.decision, request.checker) == ("approved", rehema)
    assert "Approved" in done.content.decode()
    assert list(
        AdminAction.objects.filter(target_id=str(pushed.pk))
        .order_by("at")
        .values_list("action", "actor__email")
    ) == [
        ("deposit_confirm_manual.request", "neema@ntzs.test"),
        ("deposit_confirm_manual.approve", "rehema@ntzs.test"),
    ]


def test_the_maker_sees_no_approve_button_and_a_forged_post_is_refused_in_the_services_words(
    login, neema, pushed
):
    request = _manual_request(pushed, neema)
    client = login(neema)

    queue = client.get(QUEUE).content.decode()
    assert 'id="four-eyes-waiting"' not in queue  # not waiting for its own maker
    assert f'action="{_page(request)}withdraw/"' in queue  # but listed as theirs
    body = client.get(_page(request)).content.decode()
    assert "approve/" not in body and "reject/" not in body
    assert 'id="four-eyes-prepare"' not in body  # ZenoPay is not asked for the maker

    refused = client.post(f"{_page(request)}approve/", {"approve-reason": "me"}, follow=True)

    assert "The checker must be a different person from the maker" in refused.content.decode()
    pushed.refresh_from_db()
    request.refresh_from_db()
    assert (pushed.status, request.decision) == ("submitted", "pending")


def test_a_staff_member_who_owns_the_deposit_cannot_decide_it(
    login, neema, settlement_bank, zenopay_sandbox
):
    fatuma = compliance_officer(email="fatuma@ntzs.test", full_name="Fatuma Hassan", phone=PHONE)
    KycCaseFactory(user=fatuma, approved=True)
    fatuma.test_wallet = WalletFactory(user=fatuma, verified=True)
    own = _mobile_deposit(fatuma)
    zenopay_sandbox.knobs(empty_data_polls=10)
    request = _manual_request(own, neema)
    client = login(fatuma)

    assert f'href="{_page(request)}"' not in client.get(QUEUE).content.decode()
    body = client.get(_page(request)).content.decode()
    assert "approve/" not in body
    assert "it is their own; another member of staff must do it" in body

    refused = client.post(f"{_page(request)}approve/", {"approve-reason": "mine"}, follow=True)

    assert "it is their own; another member of staff must do it" in refused.content.decode()
    own.refresh_from_db()
    request.refresh_from_db()
    assert (own.status, request.decision) == ("submitted", "pending")


def test_a_rejection_needs_a_reason_and_then_changes_nothing(login, neema, rehema, pushed):
    request = _manual_request(pushed, neema)
    client = login(rehema)

    refused = client.post(f"{_page(request)}reject/", {"reject-reason": "  "}, follow=True)
    assert "A rejection needs a reason." in refused.content.decode()
    request.refresh_from_db()
    assert request.decision == "pending"

    client.post(f"{_page(request)}reject/", {"reject-reason": "no such entry on the dashboard"})

    request.refresh_from_db()
    pushed.refresh_from_db()
    assert (request.decision, request.checker, request.reason) == (
        "rejected",
        rehema,
        "no such entry on the dashboard",
    )
    assert pushed.status == "submitted"
    assert AdminAction.objects.filter(
        action="deposit_confirm_manual.reject", actor=rehema, outcome="rejected"
    ).exists()
    assert f'href="{_page(request)}"' not in client.get(QUEUE).content.decode()


def test_the_maker_withdraws_their_request_and_no_one_else_can(login, neema, rehema, pushed):
    request = _manual_request(pushed, neema)

    refused = login(rehema).post(f"{_page(request)}withdraw/", {}, follow=True)
    assert "Only the maker may withdraw a four-eyes request." in refused.content.decode()
    request.refresh_from_db()
    assert request.decision == "pending"

    login(neema).post(f"{_page(request)}withdraw/", {"withdraw-reason": "typo in the id"})

    request.refresh_from_db()
    assert (request.decision, request.reason) == ("withdrawn", "typo in the id")
    assert AdminAction.objects.filter(
        action="deposit_confirm_manual.withdraw", actor=neema
    ).exists()


def test_each_person_sees_only_the_requests_whose_action_roles_they_hold(
    login, client, staff_otp_login, neema, rehema, salim, nmb_admin, root, pushed
):
    manual = _manual_request(pushed, neema)
    grant = staff_role_grant_request(
        email="rehema@ntzs.test",
        role="super_admin",
        evidence="Ticket OPS-42: second super admin for the night shift",
        maker=salim,
    )
    other_super = super_admin(email="zawadi@ntzs.test", full_name="Zawadi Mrema")
    assert rehema.groups.filter(name=PLATFORM_COMPLIANCE).exists()

    compliance_view = login(rehema).get(QUEUE).content.decode()
    assert f'href="{_page(manual)}"' in compliance_view
    assert f'href="{_page(grant)}"' not in compliance_view  # super admins only
    assert login(rehema).get(_page(grant)).status_code == 403  # nor its evidence

    super_view = login(other_super).get(QUEUE).content.decode()
    assert f'href="{_page(manual)}"' in super_view and f'href="{_page(grant)}"' in super_view

    bank_view = login(nmb_admin).get(QUEUE)
    assert bank_view.status_code == 200
    assert "Nothing is waiting for you." in bank_view.content.decode()
    assert login(nmb_admin).get(_page(manual)).status_code == 403
    refused = login(nmb_admin).post(f"{_page(manual)}approve/", {}, follow=True)
    assert "needs one of the roles platform_compliance, super_admin" in refused.content.decode()
    assert DualControlRequest.objects.get(pk=manual.pk).decision == "pending"

    client.logout()
    staff_otp_login(client, root)  # a superuser without a role: no queue at all
    assert client.get(QUEUE).status_code == 403


def test_the_index_links_the_queue_for_staff_with_a_role_only(login, neema, root):
    assert f'href="{QUEUE}"' in login(neema).get("/backstage/").content.decode()
    assert f'href="{QUEUE}"' not in login(root).get("/backstage/").content.decode()


def test_zenopays_other_answer_is_shown_and_the_approval_is_refused_in_the_services_words(
    login, neema, rehema, amina, zenopay_sandbox
):
    deposit = _mobile_deposit(amina)
    zenopay_sandbox.approve(deposit.pk, drop_webhook=True)  # paid, with ZenoPay's own transid
    request = _manual_request(deposit, neema, transid="TXWRONG")
    client = login(rehema)

    body = client.get(_page(request)).content.decode()
    assert "ZenoPay reports COMPLETED: transaction" in body

    refused = client.post(f"{_page(request)}approve/", {"approve-reason": "ok"}, follow=True)

    assert "not the one entered; refused." in refused.content.decode()
    deposit.refresh_from_db()
    request.refresh_from_db()
    assert (deposit.status, request.decision) == ("submitted", "pending")
