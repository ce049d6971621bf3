import pytest
from django.urls import reverse

from accounts.models import KycCase, User
from core.models import AdminAction
from tests.factories import KycCaseFactory, WalletFactory, compliance_officer, super_admin

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_otp_login):
    staff_otp_login(client, super_admin(email="root@ntzs.test", is_superuser=True))
    return client


@pytest.mark.parametrize("model", ["user", "kyccase", "wallet"])
def test_admin_lists_open(admin_client, model):
    WalletFactory()
    KycCaseFactory()

    response = admin_client.get(reverse(f"admin:accounts_{model}_changelist"))

    assert response.status_code == 200


def test_admin_adds_a_user_by_email(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "new@ntzs.test",
            "usable_password": "true",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )

    assert response.status_code == 302
    assert response.url != reverse("staff_otp_verify")
    assert User.objects.filter(email="new@ntzs.test").exists()


def test_wallets_and_kyc_cases_are_read_only_in_the_admin(admin_client):
    wallet = WalletFactory()

    response = admin_client.post(
        reverse("admin:accounts_wallet_change", args=[wallet.pk]), {"address": "0x" + "1" * 40}
    )

    assert response.status_code == 403
    assert admin_client.get(reverse("admin:accounts_kyccase_add")).status_code == 403


def test_admin_approve_action_goes_through_the_review_service(client, staff_otp_login):
    neema = compliance_officer()
    staff_otp_login(client, neema)
    case = KycCaseFactory()

    response = client.post(
        reverse("admin:accounts_kyccase_changelist"),
        {
            "action": "approve_cases",
            "_selected_action": [str(case.pk)],
        },
    )

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == KycCase.Status.APPROVED
    assert AdminAction.objects.get().actor == neema


def test_no_admin_form_can_give_a_role_or_the_superuser_flag(client, staff_otp_login):
    from django.contrib.auth.models import Group

    from core.roles import SUPER_ADMIN, user_roles
    from tests.factories import super_admin

    salim = super_admin(is_superuser=True)
    staff_otp_login(client, salim)
    neema = compliance_officer()
    group = Group.objects.get(name=SUPER_ADMIN)

    client.post(
        reverse("admin:accounts_user_change", args=[neema.pk]),
        {
            "email": neema.email,
            "full_name": "Neema",
            "phone": "",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [group.pk],
        },
    )
    response = client.post(
        reverse("admin:auth_group_change", args=[group.pk]),
        {"name": "super_admin", "permissions": []},
    )

    neema.refresh_from_db()
    assert neema.full_name == "Neema"  # the form was saved, without the role and the flag
    assert user_roles(neema) == {"platform_compliance"}
    assert not neema.is_superuser
    assert response.status_code == 403
