"""Backstage personas, banks and deposits. Staff log in with a passed second factor
(``staff_otp_login`` in tests/conftest.py)."""

from __future__ import annotations

import pytest

from deposits.models import Bank, BankStaff, DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from tests.factories import (
    KycCaseFactory,
    UserFactory,
    WalletFactory,
    bank_admin,
    compliance_officer,
    customer,
    super_admin,
)

BANK_TRANSFER = DepositRequest.Provider.BANK_TRANSFER


@pytest.fixture
def settlement_bank(db) -> Bank:
    return Bank.objects.create(name="CRDB (ZenoPay settlement)", is_zenopay_settlement=True)


@pytest.fixture
def nmb(db) -> Bank:
    return Bank.objects.create(name="NMB")


@pytest.fixture
def exim(db) -> Bank:
    return Bank.objects.create(name="Exim")


def _customer(email: str):
    person = customer(email=email, phone="+255712345678")
    KycCaseFactory(user=person, approved=True)
    person.test_wallet = WalletFactory(user=person, verified=True)
    return person


@pytest.fixture
def amina(db, settlement_bank):
    return _customer("amina@ntzs.test")


@pytest.fixture
def juma(db, settlement_bank):
    return _customer("juma@ntzs.test")


def transfer(user, bank: Bank, amount: int = 5_000) -> DepositRequest:
    deposit, _created = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider=BANK_TRANSFER,
            wallet_id=user.test_wallet.pk,
            buyer_phone="",
            bank_id=bank.pk,
        ),
    )
    return deposit


@pytest.fixture
def nmb_admin(db, nmb):
    person = bank_admin(email="baraka@nmb.ntzs.test")
    BankStaff.objects.create(user=person, bank=nmb)
    return person


@pytest.fixture
def neema(db):
    return compliance_officer()


@pytest.fixture
def salim(db):
    """A super admin who also carries Django's superuser flag."""
    return super_admin(is_superuser=True)


@pytest.fixture
def root(db):
    """A Django superuser without any staff role."""
    return UserFactory(email="root@ntzs.test", is_staff=True, is_superuser=True)


@pytest.fixture
def login(client, staff_otp_login):
    """Log the test client in as a member of staff, second factor passed."""

    def _login(user):
        staff_otp_login(client, user)
        return client

    return _login
