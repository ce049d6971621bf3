"""Who sees and changes what in Backstage: permissions come from the role groups (each app's
``role_permissions`` migration) through core's role check; Django's superuser flag grants
nothing; ledgers are read-only for everyone; bank admins see their own bank's deposits only."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.roles import PLATFORM_COMPLIANCE
from deposits.selectors import deposits_visible_to
from tests.backstage.conftest import transfer
from tests.factories import PASSWORD, bank_admin

pytestmark = pytest.mark.django_db

LEDGERS = [
    "deposits.DepositTransition",
    "deposits.DepositApproval",
    "deposits.PaymentNotification",
    "deposits.LimitEvent",
    "minting.MintTransaction",
    "minting.MintAttempt",
    "minting.MintLogClaim",
    "minting.SafeBatchExport",
    "minting.DailyIssuance",
    "minting.SignerAccount",
    "minting.CircuitState",
    "minting.TokenDeployment",
    "core.TaskHeartbeat",
    "core.AdminAction",
    "core.DualControlRequest",
]


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _some_pk(model) -> str:
    """A key of the model's type. The admin checks the permission before it looks the row
    up, so a refusal (403) cannot come from a missing row (that is a redirect)."""
    pk = model._meta.pk
    if isinstance(pk, models.UUIDField):
        return str(uuid.uuid4())
    if isinstance(pk, models.DateField):
        return dt.date(2026, 12, 1).isoformat()
    if isinstance(pk, models.CharField):
        return "minter"
    return "1"


@pytest.mark.parametrize("label", LEDGERS)
def test_a_ledger_is_read_only_even_for_a_super_admin_superuser(login, salim, label):
    model = apps.get_model(label)
    client = login(salim)

    changelist = client.get(_url(model, "changelist"))
    pk = _some_pk(model)

    assert changelist.status_code == 200
    assert _url(model, "add") not in changelist.content.decode()
    assert client.post(_url(model, "add"), {}).status_code == 403
    assert client.post(_url(model, "change", pk), {}).status_code == 403
    assert client.post(_url(model, "delete", pk), {"post": "yes"}).status_code == 403


def test_a_superuser_without_a_role_sees_nothing_and_cannot_change_a_deposit(
    login, root, amina, nmb
):
    deposit = transfer(amina, nmb)
    client = login(root)

    index = client.get(reverse("admin:index"))

    assert index.status_code == 200
    assert "You don’t have permission to view or edit anything" in index.content.decode()
    assert client.get(reverse("admin:deposits_depositrequest_changelist")).status_code == 403
    change_url = reverse("admin:deposits_depositrequest_change", args=[deposit.pk])
    assert client.post(change_url, {"status": "minted"}).status_code == 403
    deposit.refresh_from_db()
    assert deposit.status == "submitted"


def test_no_role_may_edit_a_deposit_in_the_admin(login, salim, amina, nmb):
    deposit = transfer(amina, nmb)
    client = login(salim)
    change_url = reverse("admin:deposits_depositrequest_change", args=[deposit.pk])

    page = client.get(change_url)
    refused = client.post(change_url, {"status": "minted", "amount_tzs": 1})

    assert page.status_code == 200
    assert 'type="submit"' not in page.content.decode().split('id="content-main"')[1]
    assert refused.status_code == 403
    deposit.refresh_from_db()
    assert (deposit.status, deposit.amount_tzs) == ("submitted", 5_000)


def test_a_bank_admin_sees_only_their_banks_deposits(login, nmb_admin, amina, juma, nmb, exim):
    own = transfer(amina, nmb)
    other = transfer(juma, exim)
    client = login(nmb_admin)
    changelist = reverse("admin:deposits_depositrequest_changelist")

    listed = client.get(changelist).content.decode()
    searched = client.get(changelist, {"q": "juma@ntzs.test"}).content.decode()
    detail = client.get(
        reverse("admin:deposits_depositrequest_change", args=[other.pk]), follow=True
    )

    assert str(own.pk) in listed
    assert str(other.pk) not in listed
    assert "juma@ntzs.test" not in listed
    assert str(other.pk) not in searched
    assert "0 deposits" in searched
    assert detail.redirect_chain == [(reverse("admin:index"), 302)]
    assert "juma@ntzs.test" not in detail.content.decode()
    assert "doesn’t exist" in detail.content.decode()


def test_a_bank_admin_opens_their_own_banks_deposit(login, nmb_admin, amina, nmb):
    own = transfer(amina, nmb)
    client = login(nmb_admin)

    response = client.get(reverse("admin:deposits_depositrequest_change", args=[own.pk]))

    assert response.status_code == 200
    assert "amina@ntzs.test" in response.content.decode()


def test_a_bank_admin_sees_no_ledger_and_only_their_banks_alerts(login, nmb_admin):
    client = login(nmb_admin)

    index = client.get(reverse("admin:index")).content.decode()

    assert reverse("admin:deposits_depositrequest_changelist") in index
    assert reverse("admin:deposits_deposittransition_changelist") not in index
    # alerts about their bank's deposits only: tests/backstage/test_operations.py
    assert client.get(reverse("admin:core_alert_changelist")).status_code == 200
    assert client.get(reverse("admin:core_taskheartbeat_changelist")).status_code == 403


def test_deposits_visible_to_follows_the_role(neema, root, amina, juma, nmb, exim):
    own = transfer(amina, nmb)
    other = transfer(juma, exim)
    without_bank = bank_admin(email="no-bank@ntzs.test")

    assert set(deposits_visible_to(user=neema)) == {own, other}
    assert set(deposits_visible_to(user=root)) == set()
    assert set(deposits_visible_to(user=without_bank)) == set()


def test_the_role_groups_are_the_one_source_of_a_screens_permission(login, neema):
    client = login(neema)
    alerts = reverse("admin:core_alert_changelist")
    assert client.get(alerts).status_code == 200

    Group.objects.get(name=PLATFORM_COMPLIANCE).permissions.remove(
        Permission.objects.get(content_type__app_label="core", codename="view_alert")
    )

    assert client.get(alerts).status_code == 403


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:deposits_depositrequest_changelist"))
    assert response.status_code == 200
    return len(queries)


def test_the_deposit_changelist_costs_the_same_queries_for_more_rows(login, neema, amina, nmb):
    transfer(amina, nmb, amount=5_000)
    client = login(neema)
    _changelist_queries(client)  # the session's first page also records its last activity
    one_row = _changelist_queries(client)
    for amount in (6_000, 7_000, 8_000):
        transfer(amina, nmb, amount=amount)

    assert _changelist_queries(client) == one_row


def test_a_super_admin_cannot_set_another_persons_password(login, salim, neema):
    client = login(salim)
    url = reverse("admin:auth_user_password_change", args=[neema.pk])

    response = client.post(
        url, {"password1": "a-new-passphrase-42", "password2": "a-new-passphrase-42"}
    )

    assert response.status_code == 403
    neema.refresh_from_db()
    assert neema.check_password(PASSWORD)


def test_a_super_admin_cannot_change_another_persons_email(login, salim, neema):
    """The e-mail is where password reset links go: changing it would hand over the account."""
    client = login(salim)
    url = reverse("admin:accounts_user_change", args=[neema.pk])

    page = client.get(url)
    response = client.post(
        url,
        {
            "email": "salim-controls-this@ntzs.test",
            "full_name": neema.full_name,
            "phone": neema.phone,
            "is_active": "on",
        },
    )

    assert 'name="email"' not in page.content.decode()
    assert response.status_code in (200, 302)
    neema.refresh_from_db()
    assert neema.email != "salim-controls-this@ntzs.test"
