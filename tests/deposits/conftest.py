"""Personas and banks for the deposit tests."""

from __future__ import annotations

import pytest

from deposits.models import Bank, BankStaff, DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from tests.factories import (
    KycCaseFactory,
    WalletFactory,
    bank_admin,
    compliance_officer,
    customer,
    super_admin,
)

PHONE = "+255712345678"


@pytest.fixture
def settlement_bank(db) -> Bank:
    return Bank.objects.create(name="CRDB (ZenoPay settlement)", is_zenopay_settlement=True)


@pytest.fixture
def nmb_bank(db) -> Bank:
    return Bank.objects.create(name="NMB", transfer_instructions="Account 2040 1234 567")


@pytest.fixture
def amina(db, settlement_bank):
    """A customer with approved KYC and a verified wallet."""
    person = customer(email="amina@ntzs.test", phone=PHONE)
    KycCaseFactory(user=person, approved=True)
    person.test_wallet = WalletFactory(user=person, verified=True)
    return person


@pytest.fixture
def baraka(db, settlement_bank):
    person = customer(email="baraka@ntzs.test")
    KycCaseFactory(user=person, approved=True)
    person.test_wallet = WalletFactory(user=person, verified=True)
    return person


@pytest.fixture
def compliance(db):
    return compliance_officer(email="compliance@ntzs.test")


@pytest.fixture
def compliance_two(db):
    return compliance_officer(email="compliance2@ntzs.test")


@pytest.fixture
def superadmin(db):
    return super_admin(email="super@ntzs.test")


@pytest.fixture
def nmb_admin(db, nmb_bank):
    person = bank_admin(email="nmb-admin@ntzs.test")
    BankStaff.objects.create(user=person, bank=nmb_bank)
    return person


@pytest.fixture
def other_bank_admin(db):
    crdb = Bank.objects.create(name="Exim")
    person = bank_admin(email="exim-admin@ntzs.test")
    BankStaff.objects.create(user=person, bank=crdb)
    return person


@pytest.fixture
def make_deposit(amina):
    def _make(
        user=None,
        amount=5_000,
        provider=DepositRequest.Provider.ZENOPAY,
        phone=PHONE,
        bank=None,
        key=None,
    ) -> DepositRequest:
        user = user or amina
        deposit, _created = deposit_create(
            user=user,
            data=DepositInput(
                amount_tzs=amount,
                payment_provider=provider,
                wallet_id=user.test_wallet.pk,
                buyer_phone=phone,
                bank_id=bank.pk if bank else None,
                idempotency_key=key,
            ),
        )
        return deposit

    return _make


@pytest.fixture(autouse=True)
def _every_status_change_has_its_transition_row(request):
    """After every deposit test: each deposit's latest transition ends in its status, and
    the transitions chain (each from-status is the previous to-status). Tests that place a
    deposit in a status directly for set-up are marked ``forced_status``."""
    yield
    if (
        request.node.get_closest_marker("forced_status")
        or "db" not in request.fixturenames
        and "transactional_db" not in request.fixturenames
        and not request.node.get_closest_marker("django_db")
    ):
        return
    from deposits.models import DepositTransition

    for deposit in DepositRequest.objects.all():
        history = list(
            DepositTransition.objects.filter(deposit=deposit)
            .order_by("at", "id")
            .values_list("from_status", "to_status")
        )
        assert history, f"deposit {deposit.pk} has no transition rows"
        assert history[0][0] == "", f"deposit {deposit.pk}: first row is not its creation"
        for previous, current in zip(history, history[1:], strict=False):
            assert current[0] == previous[1], f"deposit {deposit.pk}: broken chain {history}"
        assert history[-1][1] == deposit.status, (
            f"deposit {deposit.pk} is {deposit.status} but its history ends in {history[-1][1]}"
        )
