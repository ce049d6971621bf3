"""Minting test set-up: Django pointed at the session's anvil, customers with verified
wallets, paid deposits, and the DESIGN §4 status table asserted after every test."""

from __future__ import annotations

import itertools

import pytest
from django.db.models import Sum

from deposits.models import DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.transitions import deposit_payment_confirm
from minting.models import DailyIssuance, MintAttempt, MintLogClaim, MintTransaction
from tests.deposits.conftest import (  # noqa: F401 - shared personas and banks
    amina,
    baraka,
    compliance,
    compliance_two,
    settlement_bank,
    superadmin,
)

_refs = itertools.count(1)
S = DepositRequest.Status
MT = MintTransaction.Status
LIVE = ("signed", "sent")


@pytest.fixture
def minting(chain_settings, settings):
    settings.MINT_CONFIRMATIONS = 1
    settings.NTZS_MINT_WITH_REF = None
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 100_000
    settings.USER_DAILY_LIMIT_TZS = 10**12
    settings.USER_MONTHLY_LIMIT_TZS = 10**12
    settings.MAX_PAYING_PHONES_PER_30_DAYS = 100_000  # paid_deposit uses a new phone each time
    return chain_settings


@pytest.fixture
def paid_deposit(amina, minting):  # noqa: F811 - the imported fixture
    """A deposit whose payment was confirmed: mint_pending (or the Safe lane)."""

    def _paid(amount: int = 5_000, user=None) -> DepositRequest:
        user = user or amina
        deposit, _ = deposit_create(
            user=user,
            data=DepositInput(
                amount_tzs=amount,
                payment_provider="zenopay",
                wallet_id=user.test_wallet.pk,
                buyer_phone=f"07{next(_refs) % 10**8:08d}",
            ),
        )
        deposit_payment_confirm(
            deposit_id=deposit.pk,
            amount_tzs=amount,
            psp_reference=f"TX{next(_refs):08d}",
            source="poll",
        )
        deposit.refresh_from_db()
        return deposit

    return _paid


def assert_status_table() -> None:
    """DESIGN §4 "statuses that go together", and the reservation ledger per day."""
    for deposit in DepositRequest.objects.all():
        mint = MintTransaction.objects.filter(deposit=deposit).first()
        live = mint.attempts.filter(status__in=LIVE).count() if mint else 0
        reserved = mint.reserved_tzs if mint else 0
        where = f"deposit {deposit.pk} ({deposit.status})"
        if deposit.status == S.MINT_PENDING:
            assert mint is None or mint.status in (MT.PENDING, MT.CAP_EXCEEDED), where
            assert (live, reserved) == (0, 0), where
        elif deposit.status == S.MINT_PROCESSING:
            assert mint.status in (MT.SIGNED, MT.SENT), where
            assert live >= 1 and reserved > 0, where
        elif deposit.status == S.MINT_FAILED:
            assert mint.status == MT.FAILED and (live, reserved) == (0, 0), where
        elif deposit.status == S.MINTED:
            assert mint.status == MT.MINTED and mint.tx_hash and mint.log_index is not None, where
            assert reserved == 0, where
            claim = MintLogClaim.objects.get(deposit=deposit, superseded_by__isnull=True)
            assert (claim.tx_hash, claim.log_index) == (mint.tx_hash, mint.log_index), where
        elif deposit.status == S.MINT_REQUIRES_SAFE:
            assert mint is None or mint.status in (MT.FAILED, MT.AWAITING_CONFIRMATIONS), where
            assert (live, reserved) == (0, 0), where
        elif deposit.status == S.REFUNDED:  # a refunded failed mint keeps its history
            assert mint is None or mint.status in (MT.PENDING, MT.CAP_EXCEEDED, MT.FAILED), where
            assert (live, reserved) == (0, 0), where
        else:
            assert mint is None or mint.status in (MT.PENDING, MT.CAP_EXCEEDED), where
    for day in DailyIssuance.objects.all():
        held = (
            MintTransaction.objects.filter(reserved_day=day.day).aggregate(
                total=Sum("reserved_tzs")
            )["total"]
            or 0
        )
        assert day.reserved_tzs == held, f"{day.day}: ledger {day.reserved_tzs} != {held}"


@pytest.fixture(autouse=True)
def _status_table_holds_after_every_test(request):
    yield
    if "minting" in request.fixturenames:
        assert_status_table()


def live_attempts() -> int:
    return MintAttempt.objects.filter(status__in=LIVE).count()
