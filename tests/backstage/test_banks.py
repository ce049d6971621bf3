"""Banks and bank staff in Backstage, through the real admin URLs: super admins manage them
(every change an AdminAction), compliance officers only read, bank admins see neither."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AdminAction
from deposits.models import Bank, BankStaff
from tests.backstage.conftest import transfer
from tests.factories import bank_admin

pytestmark = pytest.mark.django_db

BANK_ADD = reverse("admin:deposits_bank_add")
STAFF_ADD = reverse("admin:deposits_bankstaff_add")


def _bank_form(**overrides) -> dict:
    form = {
        "name": "Azania Bank",
        "status": "active",
        "account_name": "nTZS Limited",
        "account_number": "0100 2233 4455",
        "transfer_instructions": "Branch: Posta, Dar es Salaam",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def test_a_super_admin_creates_a_bank_and_assigns_a_bank_admin(login, salim):
    teller = bank_admin(email="rehema@azania.ntzs.test")
    client = login(salim)

    created = client.post(BANK_ADD, _bank_form())
    bank = Bank.objects.get(name="Azania Bank")
    assigned = client.post(STAFF_ADD, {"user": teller.pk, "bank": bank.pk})

    assert created.status_code == 302
    assert (bank.status, bank.account_number) == ("active", "0100 2233 4455")
    assert not bank.is_zenopay_settlement
    assert assigned.status_code == 302
    assert BankStaff.objects.get(user=teller).bank == bank
    actions = AdminAction.objects.filter(actor=salim).order_by("at", "id")
    assert [(a.action, a.target_id) for a in actions] == [
        ("bank.create", str(bank.pk)),
        ("bank_staff.assign", str(teller.pk)),
    ]


def test_an_active_bank_without_an_account_number_is_refused_with_the_sentence(login, salim):
    page = login(salim).post(BANK_ADD, _bank_form(account_number=""))

    assert page.status_code == 200
    assert "An active bank needs the account name and number customers pay into" in (
        page.content.decode()
    )
    assert not Bank.objects.filter(name="Azania Bank").exists()
    assert not AdminAction.objects.exists()


def test_an_inactive_bank_may_wait_for_its_account_details(login, salim):
    response = login(salim).post(BANK_ADD, _bank_form(status="inactive", account_number=""))

    assert response.status_code == 302
    assert Bank.objects.get(name="Azania Bank").status == "inactive"


def test_a_second_zenopay_settlement_bank_is_refused_with_the_sentence(
    login, salim, settlement_bank
):
    page = login(salim).post(BANK_ADD, _bank_form(is_zenopay_settlement="on"))

    assert page.status_code == 200
    body = page.content.decode()
    assert "is already the ZenoPay settlement bank; clear its flag first" in body
    assert "bank_one_zenopay_settlement" not in body  # never the database's own message
    assert Bank.objects.filter(is_zenopay_settlement=True).get() == settlement_bank


def test_a_super_admin_deactivates_a_bank_and_cannot_delete_it(login, salim, nmb, amina):
    transfer(amina, nmb)
    client = login(salim)
    change = reverse("admin:deposits_bank_change", args=[nmb.pk])

    saved = client.post(change, _bank_form(name="NMB", status="inactive", account_number=""))
    deleted = client.post(reverse("admin:deposits_bank_delete", args=[nmb.pk]), {"post": "yes"})

    assert saved.status_code == 302
    nmb.refresh_from_db()
    assert nmb.status == "inactive"
    action = AdminAction.objects.get(action="bank.update")
    assert action.params["status"] == {"from": "active", "to": "inactive"}
    assert deleted.status_code == 403
    assert Bank.objects.filter(pk=nmb.pk).exists()


@pytest.mark.parametrize("persona", ["neema", "nmb_admin"])
def test_compliance_and_bank_admins_cannot_create_or_change_banks(
    login, request, persona, nmb, exim
):
    user = request.getfixturevalue(persona)
    client = login(user)
    teller = bank_admin(email="rehema@exim.ntzs.test")

    add = client.post(BANK_ADD, _bank_form())
    change = client.post(
        reverse("admin:deposits_bank_change", args=[nmb.pk]), _bank_form(name="NMB")
    )
    staff = client.post(STAFF_ADD, {"user": teller.pk, "bank": exim.pk})

    assert (add.status_code, change.status_code, staff.status_code) == (403, 403, 403)
    assert not Bank.objects.filter(name="Azania Bank").exists()
    assert not BankStaff.objects.filter(user=teller).exists()
    assert not AdminAction.objects.exists()


def test_compliance_reads_the_banks_without_an_add_button(login, neema, nmb):
    page = login(neema).get(reverse("admin:deposits_bank_changelist"))

    assert page.status_code == 200
    assert "NMB" in page.content.decode()
    assert BANK_ADD not in page.content.decode()


def test_only_bank_admins_can_be_assigned_a_bank(login, salim, neema, nmb):
    page = login(salim).post(STAFF_ADD, {"user": neema.pk, "bank": nmb.pk})

    assert page.status_code == 200  # the form refuses a choice outside bank admins
    assert not BankStaff.objects.filter(user=neema).exists()


def test_a_super_admin_moves_and_removes_a_bank_admin(login, salim, nmb_admin, nmb, exim):
    client = login(salim)
    row = BankStaff.objects.get(user=nmb_admin)

    moved = client.post(
        reverse("admin:deposits_bankstaff_change", args=[row.pk]), {"bank": exim.pk}
    )
    assert moved.status_code == 302
    assert BankStaff.objects.get(user=nmb_admin).bank == exim

    removed = client.post(
        reverse("admin:deposits_bankstaff_delete", args=[row.pk]), {"post": "yes"}
    )
    assert removed.status_code == 302
    assert not BankStaff.objects.filter(user=nmb_admin).exists()
    assert list(
        AdminAction.objects.filter(target_id=str(nmb_admin.pk))
        .order_by("at", "id")
        .values_list("action", flat=True)
    ) == ["bank_staff.assign", "bank_staff.remove"]


def test_the_refusal_is_in_kiswahili_with_the_language_cookie(login, salim, settings):
    client = login(salim)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"

    page = client.post(BANK_ADD, _bank_form(account_name=""))

    assert "Benki iliyo hai inahitaji jina na namba ya akaunti" in page.content.decode()
