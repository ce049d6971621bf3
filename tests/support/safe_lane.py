"""A paid deposit waiting in the Safe lane, as the Safe-lane tests need it."""

from __future__ import annotations

import itertools

from deposits.models import DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.transitions import deposit_payment_confirm

_refs = itertools.count(1)


def safe_deposit(user, amount: int = 10_000) -> DepositRequest:
    """A paid deposit above the Safe threshold: mint_requires_safe."""
    deposit, _created = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider=DepositRequest.Provider.ZENOPAY,
            wallet_id=user.test_wallet.pk,
            buyer_phone="+255712345678",
        ),
    )
    deposit_payment_confirm(
        deposit_id=deposit.pk,
        amount_tzs=amount,
        psp_reference=f"TXSAFE{next(_refs):06d}",
        source="poll",
    )
    deposit.refresh_from_db()
    assert deposit.status == "mint_requires_safe"
    return deposit
