"""People pages in Backstage, through the real admin URLs: KYC rejection with a reason, the
maker's half of a manual wallet verification, staff role grants (four eyes) and removals,
API tokens listed by prefix and revoked. Refusals are the services' sentences."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.authtoken.models import Token

from accounts.models import KycCase
from core.exceptions import PermissionRefused
from core.models import AdminAction, DualControlRequest
from core.roles import BANK_ADMIN, PLATFORM_COMPLIANCE
from core.services import dual_control_approve
from tests.factories import KycCaseFactory, UserFactory, WalletFactory, customer, super_admin

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def pending_case(db):
    return KycCaseFactory(user=customer(email="zawadi@ntzs.test", full_name="Zawadi Mrema"))


# --- KYC ---------------------------------------------------------------------------------------


def test_compliance_rejects_a_kyc_case_with_a_reason(login, neema, pending_case):
    url = reverse("admin:accounts_kyccase_reject", args=[pending_case.pk])
    client = login(neema)

    page = client.get(url)
    rejected = client.post(url, {"reason": "The photo of the ID card is unreadable."})

    assert page.status_code == 200
    assert "Zawadi Mrema" in page.content.decode()
    assert rejected.status_code == 302
    pending_case.refresh_from_db()
    assert (pending_case.status, pending_case.reviewed_by) == ("rejected", neema)
    assert pending_case.review_reason == "The photo of the ID card is unreadable."
    action = AdminAction.objects.get(action="kyc_review.reject")
    assert (action.actor, action.reason) == (neema, "The photo of the ID card is unreadable.")


def test_a_rejection_without_a_reason_is_refused_in_the_services_words(login, salim, pending_case):
    url = reverse("admin:accounts_kyccase_reject", args=[pending_case.pk])

    page = login(salim).post(url, {"reason": "  "})

    assert page.status_code == 200
    assert any("A rejection needs a reason" in text for text in _messages(page))
    pending_case.refresh_from_db()
    assert pending_case.status == "pending"


def test_a_bank_admin_cannot_open_the_kyc_rejection(login, nmb_admin, pending_case):
    url = reverse("admin:accounts_kyccase_reject", args=[pending_case.pk])

    refused = login(nmb_admin).post(url, {"reason": "No reason of theirs counts."})

    assert refused.status_code == 403
    pending_case.refresh_from_db()
    assert pending_case.status == KycCase.Status.PENDING


def test_the_kyc_list_links_the_rejection_of_pending_cases_for_reviewers(
    login, neema, pending_case
):
    page = login(neema).get(reverse("admin:accounts_kyccase_changelist"))

    assert reverse("admin:accounts_kyccase_reject", args=[pending_case.pk]) in (
        page.content.decode()
    )


# --- Wallets -----------------------------------------------------------------------------------


def test_compliance_asks_for_a_manual_wallet_verification(login, neema):
    wallet = WalletFactory(user=customer(email="zawadi@ntzs.test"))
    url = reverse("admin:accounts_wallet_verify", args=[wallet.pk])
    client = login(neema)

    page = client.get(url)
    asked = client.post(url, {"evidence": "Video call on 1 Dec, ID card and wallet app shown."})

    assert page.status_code == 200
    assert wallet.address in page.content.decode()
    assert asked.status_code == 302
    request = DualControlRequest.objects.get(action="wallet_verify_manual")
    assert (request.maker, request.decision, request.target_id) == (
        neema,
        "pending",
        str(wallet.pk),
    )
    wallet.refresh_from_db()
    assert wallet.verified_at is None  # a second person decides in the four-eyes queue


def test_too_short_wallet_evidence_is_refused_in_the_services_words(login, neema):
    wallet = WalletFactory(user=customer(email="zawadi@ntzs.test"))

    page = login(neema).post(
        reverse("admin:accounts_wallet_verify", args=[wallet.pk]), {"evidence": "ok"}
    )

    assert any("Describe the evidence" in text for text in _messages(page))
    assert not DualControlRequest.objects.exists()


# --- Staff roles -------------------------------------------------------------------------------


def test_a_super_admin_asks_for_a_role_grant_that_they_cannot_approve_themselves(login, salim):
    grantee = UserFactory(email="rehema@nmb.ntzs.test")
    url = reverse("admin:accounts_user_roles", args=[grantee.pk])

    asked = login(salim).post(
        url,
        {
            "grant": "1",
            "grant-role": BANK_ADMIN,
            "grant-evidence": "Ticket OPS-311, signed by NMB's branch manager.",
        },
    )

    assert asked.status_code == 302
    request = DualControlRequest.objects.get(action="staff_role_grant")
    assert (request.decision, request.maker, request.params) == (
        "pending",
        salim,
        {"role": BANK_ADMIN},
    )
    with pytest.raises(PermissionRefused, match="different person from the maker"):
        dual_control_approve(request_id=request.pk, checker=salim)
    assert not grantee.groups.exists()
    dual_control_approve(request_id=request.pk, checker=super_admin(email="fatma@ntzs.test"))
    assert list(grantee.groups.values_list("name", flat=True)) == [BANK_ADMIN]


def test_nobody_asks_for_a_role_for_themselves(login, salim):
    page = login(salim).post(
        reverse("admin:accounts_user_roles", args=[salim.pk]),
        {"grant": "1", "grant-role": BANK_ADMIN, "grant-evidence": "I would like to approve."},
    )

    assert any("it is their own" in text for text in _messages(page))
    assert not DualControlRequest.objects.exists()


def test_compliance_cannot_ask_for_a_role_grant(login, neema):
    grantee = UserFactory(email="rehema@nmb.ntzs.test")

    page = login(neema).post(
        reverse("admin:accounts_user_roles", args=[grantee.pk]),
        {"grant": "1", "grant-role": BANK_ADMIN, "grant-evidence": "Ticket OPS-311, urgent."},
    )

    assert page.status_code == 200
    assert any("may not request staff_role_grant" in text for text in _messages(page))
    assert "Ask for the grant" not in page.content.decode()  # no button for them
    assert not DualControlRequest.objects.exists()


def test_a_super_admin_removes_a_role_with_a_reason(login, salim, neema):
    page = login(salim).post(
        reverse("admin:accounts_user_roles", args=[neema.pk]),
        {"remove": "1", "remove-role": PLATFORM_COMPLIANCE, "remove-reason": "Left the company."},
    )

    assert page.status_code == 302
    assert not neema.groups.filter(name=PLATFORM_COMPLIANCE).exists()
    action = AdminAction.objects.get(action="staff_role.remove")
    assert (action.actor, action.reason) == (salim, "Left the company.")


# --- API tokens --------------------------------------------------------------------------------


def test_a_super_admin_sees_token_prefixes_and_revokes_one(login, salim):
    owner = customer(email="zawadi@ntzs.test")
    token = Token.objects.create(user=owner)
    client = login(salim)

    listing = client.get(reverse("admin:accounts_user_tokens"))
    revoked = client.post(
        reverse("admin:accounts_user_token_revoke", args=[owner.pk]),
        {"reason": "Key pasted in a public chat."},
    )

    body = listing.content.decode()
    assert listing.status_code == 200
    assert token.key[:6] in body and token.key not in body
    assert revoked.status_code == 302
    assert not Token.objects.filter(user=owner).exists()
    action = AdminAction.objects.get(action="api_token.revoke")
    assert (action.actor, action.target_id, action.params) == (
        salim,
        str(owner.pk),
        {"key_prefix": token.key[:6]},
    )


def test_compliance_can_neither_list_nor_revoke_tokens(login, neema):
    owner = customer(email="zawadi@ntzs.test")
    Token.objects.create(user=owner)
    client = login(neema)

    listing = client.get(reverse("admin:accounts_user_tokens"))
    revoked = client.post(
        reverse("admin:accounts_user_token_revoke", args=[owner.pk]), {"reason": "Leaked."}
    )

    assert (listing.status_code, revoked.status_code) == (403, 403)
    assert Token.objects.filter(user=owner).exists()
