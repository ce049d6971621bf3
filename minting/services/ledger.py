"""The nonce ledger of the minter key and the daily issuance (reservation) ledger.

Reservation rules (DESIGN §7.7): the claim sets ``MintTransaction.reserved_tzs`` and adds it
to the day's ``reserved_tzs``; ``→ minted`` moves it to ``issued_tzs`` of ``reserved_day``;
the lease sweep and ``→ mint_failed`` subtract it and set it to 0. A path to ``minted`` with
nothing reserved adds to ``issued_tzs`` (or ``safe_issued_tzs``) of the mint block's day.
All of it inside the deposit's compare-and-set transaction.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from minting.chain import account_address
from minting.models import DailyIssuance, MintTransaction, SignerAccount


def signer_account(
    *, address: str, chain_id: int, chain_next_nonce: int | None = None
) -> SignerAccount:
    """The ledger row of the key; created at the chain's pending count the first time."""
    signer = SignerAccount.objects.filter(address=address, chain_id=chain_id).first()
    if signer is not None:
        return signer
    try:
        with transaction.atomic():
            start = chain_next_nonce or 0
            return SignerAccount.objects.create(
                address=address, chain_id=chain_id, next_nonce=start, last_mined_nonce=start
            )
    except IntegrityError:  # another worker created it a moment ago
        return SignerAccount.objects.get(address=address, chain_id=chain_id)


def minter_signer() -> SignerAccount | None:
    """The ledger row of the configured minter key (None before its first batch)."""
    minter = account_address(settings.MINTER_PRIVATE_KEY)
    return SignerAccount.objects.filter(address=minter, chain_id=settings.CHAIN_ID).first()


def minter_room_left() -> bool:
    """Whether, by the books, the minter may have another transaction in flight (the confirm
    run moves ``last_mined_nonce`` as blocks come). With none, a pipeline run could only
    spend reads: on Base each counts against the endpoint's rate limit."""
    signer = minter_signer()
    in_flight = signer.next_nonce - signer.last_mined_nonce if signer else 0
    return in_flight < settings.MINT_MAX_IN_FLIGHT


def daily_issuance_locked(day: dt.date) -> DailyIssuance:
    """Insert the day's row if missing, then lock it (the first lock of every batch)."""
    DailyIssuance.objects.get_or_create(day=day)
    return DailyIssuance.objects.select_for_update().get(day=day)


def effective_cap(issuance: DailyIssuance) -> int:
    if issuance.cap_override_tzs is not None:
        return issuance.cap_override_tzs
    return settings.DAILY_ISSUANCE_CAP_TZS


def cap_remaining(issuance: DailyIssuance) -> int:
    return max(effective_cap(issuance) - issuance.reserved_tzs - issuance.issued_tzs, 0)


def reservation_add(*, day: dt.date, amount_tzs: int) -> None:
    DailyIssuance.objects.filter(day=day).update(reserved_tzs=F("reserved_tzs") + amount_tzs)


def reservation_release(mint: MintTransaction) -> None:
    """The lease sweep and ``→ mint_failed``: give the day back what this mint held."""
    if mint.reserved_tzs and mint.reserved_day:
        DailyIssuance.objects.filter(day=mint.reserved_day).update(
            reserved_tzs=F("reserved_tzs") - mint.reserved_tzs
        )
    MintTransaction.objects.filter(pk=mint.pk).update(reserved_tzs=0)
    mint.reserved_tzs = 0


def reservation_issue(mint: MintTransaction, *, block_day: dt.date, via_safe: bool) -> None:
    """``→ minted``: move the reservation to issued on its day, or count an unreserved
    mint (retry check, idempotency, Safe) on the mint block's day."""
    if mint.reserved_tzs and mint.reserved_day:
        DailyIssuance.objects.filter(day=mint.reserved_day).update(
            reserved_tzs=F("reserved_tzs") - mint.reserved_tzs,
            issued_tzs=F("issued_tzs") + mint.reserved_tzs,
        )
    else:
        amount = mint.deposit.amount_tzs
        DailyIssuance.objects.get_or_create(day=block_day)
        field = "safe_issued_tzs" if via_safe else "issued_tzs"
        DailyIssuance.objects.filter(day=block_day).update(**{field: F(field) + amount})
    MintTransaction.objects.filter(pk=mint.pk).update(reserved_tzs=0)
    mint.reserved_tzs = 0


def ledger_issue_bulk(
    reserved_by_day: dict[dt.date, int], unreserved_by_day: dict[dt.date, int]
) -> None:
    """Many worker mints at once: reservations move to issued on their days; unreserved
    mints count on their block's day (one UPDATE per day)."""
    for day, amount in reserved_by_day.items():
        DailyIssuance.objects.filter(day=day).update(
            reserved_tzs=F("reserved_tzs") - amount, issued_tzs=F("issued_tzs") + amount
        )
    for day, amount in unreserved_by_day.items():
        DailyIssuance.objects.get_or_create(day=day)
        DailyIssuance.objects.filter(day=day).update(issued_tzs=F("issued_tzs") + amount)
