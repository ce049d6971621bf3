"""The books' side of the supply equation counts each deposit's current claim once: a claim a
reorg superseded (a new claim on the mint's new block or log) is not counted again."""

from __future__ import annotations

import pytest

from deposits.models import DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from minting.models import MintLogClaim
from reconciliation.services.snapshots import books_at
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures


@pytest.mark.django_db
def test_a_superseded_claim_is_counted_once(amina):  # noqa: F811
    deposit, _ = deposit_create(
        user=amina,
        data=DepositInput(
            amount_tzs=5_000,
            payment_provider="zenopay",
            wallet_id=amina.test_wallet.pk,
            buyer_phone="0712345678",
        ),
    )
    DepositRequest.objects.filter(pk=deposit.pk).update(status="minted")  # set up directly
    first = MintLogClaim.objects.create(
        chain_id=31337, tx_hash="0x" + "a1" * 32, log_index=0, deposit=deposit
    )
    assert books_at(None, chain_id=31337)["db_minted_tzs"] == 5_000

    MintLogClaim.objects.create(  # the reorg moved the mint: a new claim supersedes the first
        chain_id=31337, tx_hash="0x" + "b2" * 32, log_index=3, deposit=deposit, supersedes=first
    )

    books = books_at(None, chain_id=31337)
    assert books["db_minted_tzs"] == 5_000
    assert books["deposits_minted_tzs"] == 5_000
