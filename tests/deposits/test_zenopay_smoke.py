"""`manage.py zenopay_smoke`: the go-live check (a real deposit through the normal services
for a staff member's own account, raw answers printed; or one order-status query)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from deposits.models import DepositRequest
from tests.factories import KycCaseFactory, WalletFactory, compliance_officer

PHONE = "0754123678"


@pytest.fixture
def staff_customer(db, settlement_bank):
    person = compliance_officer(email="rehema@ntzs.test")
    KycCaseFactory(user=person, approved=True)
    WalletFactory(user=person, verified=True)
    return person


def _smoke(*args) -> str:
    out = StringIO()
    call_command("zenopay_smoke", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_status_only_prints_the_raw_answer_and_changes_nothing(zenopay_fake):
    raw = '{"result": "SUCCESS", "data": [{"order_id": "ORD-1", "payment_status": "PENDING"}]}'
    zenopay_fake.reply(body=raw, headers={"Content-Type": "application/json"})

    printed = _smoke("--status-only", "ORD-1")

    assert zenopay_fake.last.method == "GET" and "order_id=ORD-1" in zenopay_fake.last.url
    assert "order-status ORD-1: HTTP 200, payment_status=PENDING" in printed
    assert raw in printed.splitlines()
    assert not DepositRequest.objects.exists()


@pytest.mark.django_db
def test_status_only_shows_an_unreadable_answer_as_it_came(zenopay_fake):
    zenopay_fake.reply(404, json={"detail": "Not Found"})

    printed = _smoke("--status-only", "ORD-2")

    assert "HTTP 404, not readable as a payment state" in printed
    assert json.loads(printed.splitlines()[-1]) == {"detail": "Not Found"}


@pytest.mark.django_db
def test_the_smoke_creates_a_real_deposit_for_the_staff_members_own_account(
    staff_customer, zenopay_sandbox
):
    printed = _smoke("--email", staff_customer.email, "--phone", PHONE, "--amount", "1500")

    deposit = DepositRequest.objects.get()
    assert (deposit.user, deposit.amount_tzs, deposit.initiation) == (
        staff_customer,
        1500,
        "requested",
    )
    lines = printed.splitlines()
    assert lines[0] == f"deposit {deposit.pk} (1500 TZS, submitted)"
    assert lines[1] == "create: requested"
    assert json.loads(lines[2]) == {
        "status": "success",
        "resultcode": "000",
        "message": "Request in progress. You will receive a callback shortly",
        "order_id": str(deposit.pk),
    }
    assert lines[3] == f"order-status {deposit.pk}: HTTP 200, payment_status=PENDING"
    assert json.loads(lines[4])["data"][0]["order_id"] == str(deposit.pk)
    assert zenopay_sandbox.order(deposit.pk).amount_tzs == 1500


@pytest.mark.django_db
def test_the_smoke_refuses_a_customer_without_a_staff_role(amina, zenopay_sandbox):
    with pytest.raises(CommandError, match="holds no staff role"):
        _smoke("--email", amina.email, "--phone", PHONE)
    assert not DepositRequest.objects.exists()


@pytest.mark.django_db
def test_the_smoke_refuses_staff_without_approved_kyc_or_a_verified_wallet(
    settlement_bank, zenopay_sandbox
):
    unchecked = compliance_officer(email="unchecked@ntzs.test")
    WalletFactory(user=unchecked, verified=True)
    walletless = compliance_officer(email="walletless@ntzs.test")
    KycCaseFactory(user=walletless, approved=True)

    with pytest.raises(CommandError, match="identity check is not approved"):
        _smoke("--email", unchecked.email, "--phone", PHONE)
    with pytest.raises(CommandError, match="no verified wallet"):
        _smoke("--email", walletless.email, "--phone", PHONE)
    assert not DepositRequest.objects.exists()


def test_the_smoke_needs_an_email_and_a_phone():
    with pytest.raises(CommandError, match="Give --email and --phone"):
        _smoke("--phone", PHONE)
