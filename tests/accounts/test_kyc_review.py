import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from accounts.models import KycCase
from accounts.selectors import user_kyc_approved
from accounts.services import InvalidInput, kyc_review
from core.exceptions import ConflictError, NotFound, PermissionRefused
from core.models import AdminAction
from tests.factories import (
    KycCaseFactory,
    bank_admin,
    compliance_officer,
    customer,
    super_admin,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def case():
    return KycCaseFactory(user=customer())


def test_compliance_officer_approves_a_pending_case_and_it_is_audited(case):
    neema = compliance_officer()

    reviewed = kyc_review(case_id=case.pk, actor=neema, decision="approved")

    assert reviewed.status == KycCase.Status.APPROVED
    assert reviewed.reviewed_by == neema
    assert reviewed.reviewed_at is not None
    assert user_kyc_approved(case.user)
    action = AdminAction.objects.get()
    assert (action.actor, action.action, action.target_type, action.target_id) == (
        neema,
        "kyc_review.approve",
        "kyc_case",
        str(case.pk),
    )
    assert action.outcome == "approved"


def test_super_admin_rejects_with_a_reason_and_it_is_audited(case):
    salim = super_admin()

    reviewed = kyc_review(
        case_id=case.pk, actor=salim, decision="rejected", reason="Name does not match the ID."
    )

    assert reviewed.status == KycCase.Status.REJECTED
    assert reviewed.review_reason == "Name does not match the ID."
    assert not user_kyc_approved(case.user)
    action = AdminAction.objects.get()
    assert (action.action, action.reason) == ("kyc_review.reject", "Name does not match the ID.")


def test_rejection_without_a_reason_is_refused(case):
    with pytest.raises(InvalidInput, match="needs a reason"):
        kyc_review(case_id=case.pk, actor=compliance_officer(), decision="rejected", reason="  ")

    case.refresh_from_db()
    assert case.status == KycCase.Status.PENDING
    assert not AdminAction.objects.exists()


@pytest.mark.parametrize("make_actor", [bank_admin, customer], ids=["bank_admin", "customer"])
def test_review_by_someone_without_the_role_is_refused(case, make_actor):
    with pytest.raises(PermissionRefused, match="platform_compliance"):
        kyc_review(case_id=case.pk, actor=make_actor(email="x@ntzs.test"), decision="approved")

    case.refresh_from_db()
    assert case.status == KycCase.Status.PENDING
    assert not AdminAction.objects.exists()


def test_a_case_is_reviewed_only_once(case):
    kyc_review(case_id=case.pk, actor=compliance_officer(), decision="approved")

    with pytest.raises(ConflictError, match="already reviewed"):
        kyc_review(case_id=case.pk, actor=super_admin(), decision="rejected", reason="Changed mind")

    case.refresh_from_db()
    assert case.status == KycCase.Status.APPROVED
    assert AdminAction.objects.count() == 1


def test_an_officer_may_not_review_their_own_case():
    neema = compliance_officer()
    own = KycCaseFactory(user=neema)

    with pytest.raises(PermissionRefused, match="it is their own"):
        kyc_review(case_id=own.pk, actor=neema, decision="approved")


@pytest.mark.parametrize("case_id", ["not-a-uuid", "6f1c7a43-9a55-4a3e-b4f2-0d0a8c1f0e11"])
def test_review_of_an_unknown_case_is_refused(case_id):
    with pytest.raises(NotFound):
        kyc_review(case_id=case_id, actor=compliance_officer(), decision="approved")


def test_kyc_review_command_approves(case, capsys):
    compliance_officer(email="neema@ntzs.test")

    call_command("kyc_review", str(case.pk), "--approve", "--actor", "Neema@ntzs.test")

    case.refresh_from_db()
    assert case.status == KycCase.Status.APPROVED
    assert "approved" in capsys.readouterr().out
    assert AdminAction.objects.get().action == "kyc_review.approve"


def test_kyc_review_command_rejects_with_a_reason(case):
    compliance_officer(email="neema@ntzs.test")

    call_command(
        "kyc_review",
        str(case.pk),
        "--reject",
        "--reason",
        "Blurry photo",
        "--actor",
        "neema@ntzs.test",
    )

    case.refresh_from_db()
    assert (case.status, case.review_reason) == (KycCase.Status.REJECTED, "Blurry photo")


def test_kyc_review_command_refuses_a_rejection_without_a_reason(case):
    compliance_officer(email="neema@ntzs.test")

    with pytest.raises(CommandError, match="needs a reason"):
        call_command("kyc_review", str(case.pk), "--reject", "--actor", "neema@ntzs.test")

    case.refresh_from_db()
    assert case.status == KycCase.Status.PENDING


def test_kyc_review_command_refuses_an_unknown_actor(case):
    with pytest.raises(CommandError, match="no active user with the email ghost@ntzs.test"):
        call_command("kyc_review", str(case.pk), "--approve", "--actor", "ghost@ntzs.test")


def test_kyc_review_command_by_a_bank_admin_exits_non_zero(case, capsys, monkeypatch):
    bank_admin(email="baraka@bank.ntzs.test")
    # run_from_argv closes the connections when done, which would end the test's transaction.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)

    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(
            [
                "manage.py",
                "kyc_review",
                str(case.pk),
                "--approve",
                "--actor",
                "baraka@bank.ntzs.test",
            ]
        )

    assert exit_info.value.code != 0
    assert "may not review KYC cases" in capsys.readouterr().err
    case.refresh_from_db()
    assert case.status == KycCase.Status.PENDING
    assert not AdminAction.objects.exists()


def test_kyc_review_command_needs_a_decision(case):
    compliance_officer(email="neema@ntzs.test")

    with pytest.raises(CommandError):
        call_command("kyc_review", str(case.pk), "--actor", "neema@ntzs.test")
