"""The beneficiary never acts (DESIGN §9, invariant 12): for every approval and every
four-eyes action on a deposit or a wallet, its owner is refused as approver, maker and
checker — even holding every staff role (and acting for the deposit's bank), so the refusal
is the beneficiary rule, not a missing role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.services import wallet_verify_manual_request
from core.exceptions import PermissionRefused
from core.models import DualControlRequest
from core.roles import STAFF_ROLES
from core.services import dual_control_approve, dual_control_reject
from deposits.models import BankStaff, DepositApproval, DepositRequest, OrphanPayment
from deposits.services.bank import (
    deposit_bank_approve,
    deposit_bank_reject,
    deposit_platform_approve,
    deposit_platform_reject,
)
from deposits.services.operator import (
    deposit_cancel_by_operator,
    deposit_confirm_manual_request,
    deposit_hold_release_request,
    deposit_refund_record_request,
    orphan_attach_request,
)
from deposits.services.transitions import deposit_hold_set, deposit_payment_confirm
from minting.models import SafeBatchExport
from minting.services.lanes import mint_refund_record, mint_route_to_safe, mint_route_to_worker
from minting.services.operator import mint_retry
from minting.services.safe import safe_batch_file
from tests.factories import WalletFactory

BANK = DepositRequest.Provider.BANK_TRANSFER
OWN = "it is their own"


@pytest.fixture
def owner(amina, nmb_bank):
    """Amina, the customer, also holding every staff role and acting for the NMB bank."""
    for role in STAFF_ROLES:
        amina.groups.add(Group.objects.get_or_create(name=role)[0])
    BankStaff.objects.create(user=amina, bank=nmb_bank)
    return amina


# --- The one-person approvals of a bank transfer ------------------------------------------------

APPROVALS = {
    "bank_approve": lambda deposit, actor: deposit_bank_approve(
        deposit_id=deposit.pk,
        actor=actor,
        bank_reference="NMB-OWN",
        amount_received_tzs=deposit.amount_tzs,
    ),
    "bank_reject": lambda deposit, actor: deposit_bank_reject(
        deposit_id=deposit.pk, actor=actor, reason="no transfer"
    ),
    "platform_approve": lambda deposit, actor: deposit_platform_approve(
        deposit_id=deposit.pk, actor=actor
    ),
    "platform_reject": lambda deposit, actor: deposit_platform_reject(
        deposit_id=deposit.pk, actor=actor, reason="no transfer"
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(APPROVALS))
def test_the_owner_never_reviews_their_own_bank_transfer(make_deposit, nmb_bank, owner, action):
    transfer = make_deposit(provider=BANK, bank=nmb_bank, phone="")

    with pytest.raises(PermissionRefused, match=OWN):
        APPROVALS[action](transfer, owner)

    transfer.refresh_from_db()
    assert (transfer.status, transfer.hold_reason) == ("submitted", "")
    assert not DepositApproval.objects.exists()


# --- The four-eyes actions: the owner is neither maker nor checker --------------------------------


def _manual_confirmation(make_deposit, owner):
    deposit = make_deposit()
    return deposit, lambda maker: deposit_confirm_manual_request(
        deposit_id=deposit.pk,
        transid="TXOWN1",
        amount_tzs=deposit.amount_tzs,
        phone="",
        evidence="seen on the dashboard",
        maker=maker,
    )


def _hold_release(make_deposit, owner):
    deposit = make_deposit()
    deposit_hold_set(
        deposit_id=deposit.pk, reason="phone mismatch: paid from another number", source="poll"
    )
    deposit.refresh_from_db()
    return deposit, lambda maker: deposit_hold_release_request(
        deposit_id=deposit.pk, resolution="clear", evidence="same person", maker=maker
    )


def _orphan_attach(make_deposit, owner):
    deposit = make_deposit(amount=7_000)
    orphan = OrphanPayment.objects.create(
        psp_reference="TXORPHAN", amount_tzs=7_000, reason="second payment"
    )
    return deposit, lambda maker: orphan_attach_request(
        orphan_id=orphan.pk, deposit_id=deposit.pk, evidence="customer asked", maker=maker
    )


def _refund_unpaid(make_deposit, owner):
    deposit = make_deposit()
    return deposit, lambda maker: deposit_refund_record_request(
        deposit_id=deposit.pk, evidence="bank reversal 77", maker=maker
    )


def _refund_paid(make_deposit, owner):
    deposit = make_deposit()
    deposit_payment_confirm(
        deposit_id=deposit.pk,
        amount_tzs=deposit.amount_tzs,
        psp_reference="TXPAIDOWN",
        source="admin",
    )
    deposit.refresh_from_db()
    return deposit, lambda maker: mint_refund_record(
        deposit_id=deposit.pk, evidence="refunded by M-Pesa reversal", maker=maker
    )


def _wallet_verification(make_deposit, owner):
    wallet = WalletFactory(user=owner)
    return None, lambda maker: wallet_verify_manual_request(
        user=owner, address=wallet.address, evidence="video call, ticket SUP-1", maker=maker
    )


FOUR_EYES = {
    "deposit_confirm_manual": _manual_confirmation,
    "deposit_hold_release": _hold_release,
    "orphan_attach": _orphan_attach,
    "deposit_refund_record": _refund_unpaid,
    "mint_refund_record": _refund_paid,
    "wallet_verify_manual": _wallet_verification,
}


def _unchanged(deposit, before):
    if deposit is not None:
        deposit.refresh_from_db()
        assert (deposit.status, deposit.hold_reason) == before


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(FOUR_EYES))
def test_the_owner_may_not_ask_for_a_four_eyes_action_on_their_own(make_deposit, owner, action):
    deposit, make = FOUR_EYES[action](make_deposit, owner)
    before = deposit and (deposit.status, deposit.hold_reason)

    with pytest.raises(PermissionRefused, match=OWN):
        make(owner)

    assert not DualControlRequest.objects.exists()
    _unchanged(deposit, before)


@pytest.mark.django_db
@pytest.mark.parametrize("decide", ["approve", "reject"])
@pytest.mark.parametrize("action", list(FOUR_EYES))
def test_the_owner_may_not_decide_a_four_eyes_action_on_their_own(
    make_deposit, owner, compliance, action, decide
):
    deposit, make = FOUR_EYES[action](make_deposit, owner)
    before = deposit and (deposit.status, deposit.hold_reason)
    request = make(compliance)
    assert request.action == action

    with pytest.raises(PermissionRefused, match=OWN):
        if decide == "approve":
            dual_control_approve(request_id=request.pk, checker=owner)
        else:
            dual_control_reject(request_id=request.pk, checker=owner, reason="looks fine")

    request.refresh_from_db()
    assert (request.decision, request.checker_id) == ("pending", None)
    _unchanged(deposit, before)


@pytest.mark.django_db
def test_another_colleague_may_still_decide_what_the_owner_may_not(
    make_deposit, owner, compliance, compliance_two
):
    deposit, make = _refund_unpaid(make_deposit, owner)
    request = make(compliance)

    dual_control_approve(request_id=request.pk, checker=compliance_two)

    deposit.refresh_from_db()
    assert deposit.status == "refunded"


# --- One-person actions on a deposit ------------------------------------------------------------


def _paid(make_deposit, owner, amount):
    deposit = make_deposit(user=owner, amount=amount)
    deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=amount, psp_reference=f"TX-OWN-{amount}", source="poll"
    )
    deposit.refresh_from_db()
    return deposit


ONE_PERSON = {
    "mint_retry": (5_000, "mint_pending"),
    "deposit_cancel": (5_000, "mint_pending"),
    "mint_route_to_safe": (5_000, "mint_pending"),
    "mint_route_to_worker": (500_000, "mint_requires_safe"),
    "safe_batch_file": (500_000, "mint_requires_safe"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(ONE_PERSON))
def test_the_owner_may_not_route_or_export_the_mint_of_their_own_deposit(
    make_deposit, owner, action
):
    amount, status = ONE_PERSON[action]
    deposit = _paid(make_deposit, owner, amount)
    assert deposit.status == status
    calls = {
        "mint_retry": lambda: mint_retry(client=None, deposit_id=deposit.pk, actor=owner),
        "deposit_cancel": lambda: deposit_cancel_by_operator(
            deposit_id=deposit.pk, actor=owner, reason="cancelling my own deposit"
        ),
        "mint_route_to_safe": lambda: mint_route_to_safe(
            deposit_id=deposit.pk, actor=owner, reason="moving my own deposit"
        ),
        "mint_route_to_worker": lambda: mint_route_to_worker(
            deposit_id=deposit.pk, actor=owner, reason="moving my own deposit"
        ),
        "safe_batch_file": lambda: safe_batch_file(deposit_ids=[deposit.pk], actor=owner),
    }

    with pytest.raises(PermissionRefused, match=OWN):
        calls[action]()

    deposit.refresh_from_db()
    assert deposit.status == status
    assert not SafeBatchExport.objects.exists()
