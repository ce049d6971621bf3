"""deposits.services.banks: super admins manage banks and bank staff; every refusal is one
sentence and writes nothing."""

from __future__ import annotations

import pytest

from core.exceptions import ConflictError, PermissionRefused
from core.models import AdminAction
from deposits.models import Bank, BankStaff
from deposits.services.banks import (
    BankDetails,
    BankRefused,
    bank_create,
    bank_staff_assign,
    bank_staff_remove,
    bank_update,
)
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.transitions import deposit_cancel
from tests.factories import (
    KycCaseFactory,
    WalletFactory,
    bank_admin,
    compliance_officer,
    customer,
    super_admin,
)

pytestmark = pytest.mark.django_db

AZANIA = BankDetails(
    name="Azania Bank", account_name="nTZS Limited", account_number="0100 2233 4455"
)


def test_a_compliance_officer_may_not_create_a_bank():
    with pytest.raises(PermissionRefused, match="may not manage banks"):
        bank_create(actor=compliance_officer(), details=AZANIA)

    assert not Bank.objects.exists()
    assert not AdminAction.objects.exists()


def test_a_bank_name_that_mentions_zenopay_is_refused():
    details = BankDetails(**{**vars(AZANIA), "name": "Azania (ZenoPay settlement)"})

    with pytest.raises(BankRefused, match="leave ZenoPay out") as refused:
        bank_create(actor=super_admin(), details=details)

    assert refused.value.field == "name"
    assert not Bank.objects.exists()


def test_the_settlement_flag_moves_only_after_it_is_cleared():
    salim = super_admin()
    crdb = bank_create(
        actor=salim,
        details=BankDetails(
            name="CRDB Bank",
            account_name="nTZS Limited",
            account_number="0150",
            is_zenopay_settlement=True,
        ),
    )
    azania = bank_create(actor=salim, details=AZANIA)
    flagged = BankDetails(**{**vars(AZANIA), "is_zenopay_settlement": True})

    with pytest.raises(BankRefused, match="CRDB Bank is already the ZenoPay settlement bank"):
        bank_update(actor=salim, bank_id=azania.pk, details=flagged)
    bank_update(
        actor=salim,
        bank_id=crdb.pk,
        details=BankDetails(name="CRDB Bank", account_name="nTZS Limited", account_number="0150"),
    )
    bank_update(actor=salim, bank_id=azania.pk, details=flagged)

    assert list(Bank.objects.filter(is_zenopay_settlement=True)) == [azania]


def test_an_unchanged_bank_writes_no_admin_action():
    salim = super_admin()
    bank = bank_create(actor=salim, details=AZANIA)

    bank_update(actor=salim, bank_id=bank.pk, details=AZANIA)

    assert list(AdminAction.objects.values_list("action", flat=True)) == ["bank.create"]


def test_a_customer_cannot_be_assigned_to_a_bank():
    salim = super_admin()
    bank = bank_create(actor=salim, details=AZANIA)
    amina = customer()

    with pytest.raises(ConflictError, match="does not hold the bank_admin role"):
        bank_staff_assign(actor=salim, user_id=amina.pk, bank_id=bank.pk)

    assert not BankStaff.objects.exists()


def test_removing_a_bank_admin_from_their_bank_is_recorded_with_the_reason():
    salim = super_admin()
    bank = bank_create(actor=salim, details=AZANIA)
    teller = bank_admin()
    bank_staff_assign(actor=salim, user_id=teller.pk, bank_id=bank.pk)

    bank_staff_remove(actor=salim, user_id=teller.pk, reason="Left Azania in November")

    assert not BankStaff.objects.exists()
    removal = AdminAction.objects.get(action="bank_staff.remove")
    assert (removal.reason, removal.params["bank"]) == ("Left Azania in November", "Azania Bank")


def test_the_account_of_a_bank_with_transfers_waiting_does_not_change_under_them():
    """Customers with an open bank transfer were shown this account: changing it (or the
    bank's status) under them could send their money elsewhere."""
    salim = super_admin()
    azania = bank_create(actor=salim, details=AZANIA)
    person = customer(email="amina@ntzs.test", phone="+255712345678")
    KycCaseFactory(user=person, approved=True)
    wallet = WalletFactory(user=person, verified=True)
    deposit, _ = deposit_create(
        user=person,
        data=DepositInput(
            amount_tzs=5_000,
            payment_provider="bank_transfer",
            wallet_id=wallet.pk,
            buyer_phone="",
            bank_id=azania.pk,
        ),
    )
    moved = BankDetails(**{**vars(AZANIA), "account_number": "0999 8877 6655"})

    with pytest.raises(ConflictError, match="1 bank transfer\\(s\\) waiting"):
        bank_update(actor=salim, bank_id=azania.pk, details=moved)
    azania.refresh_from_db()
    assert azania.account_number == "0100 2233 4455"
    assert not AdminAction.objects.filter(action="bank.update").exists()

    renamed = BankDetails(**{**vars(AZANIA), "name": "Azania Bank Ltd"})
    assert bank_update(actor=salim, bank_id=azania.pk, details=renamed).name == "Azania Bank Ltd"

    deposit_cancel(deposit_id=deposit.pk, reason="customer gave up", source="user")
    bank_update(
        actor=salim,
        bank_id=azania.pk,
        details=BankDetails(**{**vars(renamed), "account_number": "0999 8877 6655"}),
    )
    azania.refresh_from_db()
    assert azania.account_number == "0999 8877 6655"


def test_the_settlement_flag_is_refused_on_an_inactive_bank():
    """Mobile money looks for an active settlement bank: the flag on an inactive one would
    turn it off with no word to anyone."""
    salim = super_admin()
    inactive_flagged = BankDetails(name="CRDB Bank", status="inactive", is_zenopay_settlement=True)
    crdb = bank_create(
        actor=salim,
        details=BankDetails(
            name="CRDB Bank",
            account_name="nTZS Limited",
            account_number="0150",
            is_zenopay_settlement=True,
        ),
    )

    with pytest.raises(BankRefused, match="settlement bank must stay active") as refused:
        bank_update(actor=salim, bank_id=crdb.pk, details=inactive_flagged)
    with pytest.raises(BankRefused, match="settlement bank must stay active"):
        bank_create(
            actor=salim,
            details=BankDetails(
                **{**vars(AZANIA), "status": "inactive", "is_zenopay_settlement": True}
            ),
        )

    assert refused.value.field == "status"
    crdb.refresh_from_db()
    assert (crdb.status, crdb.is_zenopay_settlement) == ("active", True)
    assert list(Bank.objects.values_list("name", flat=True)) == ["CRDB Bank"]
    assert list(AdminAction.objects.values_list("action", flat=True)) == ["bank.create"]
