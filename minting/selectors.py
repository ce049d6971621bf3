"""Reads of the minting app (writes are in ``minting.services``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, F, Sum

from core.clock import today_utc
from deposits.models import DepositRequest
from minting.models import MintAttempt, MintTransaction

# ETH, like the token, has 18 decimals; this is gas money, never shillings (core.money).
_WEI_EXPONENT = -18


def mints_deferred_by_cap(*, day: dt.date | None = None):
    """Deposits waiting for the cap: still ``mint_pending``, their mint marked
    ``cap_exceeded`` on ``day`` (today by default), oldest first."""
    return (
        MintTransaction.objects.filter(
            status=MintTransaction.Status.CAP_EXCEEDED,
            cap_deferred_on=day or today_utc(),
            deposit__status=DepositRequest.Status.MINT_PENDING,
        )
        .select_related("deposit")
        .order_by("deposit__created_at", "deposit__pk")
    )


def mints_deferred_by_cap_count(*, day: dt.date | None = None) -> int:
    """How many deposits are "deferred by the cap" today (mint_status, queue_status)."""
    return mints_deferred_by_cap(day=day).count()


def wei_as_eth(wei: int) -> str:
    """An amount of wei for a person to read, exactly: ``"0.0012 ETH"``."""
    text = f"{Decimal(wei).scaleb(_WEI_EXPONENT):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} ETH"


def wei_as_gwei(wei: int) -> str:
    """A gas price for a person to read, exactly: ``"0.05 gwei"``."""
    text = f"{Decimal(wei).scaleb(-9):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} gwei"


@dataclass(frozen=True)
class MintCost:
    """What our transactions mined on one UTC day cost the minter, in wei."""

    day: dt.date
    transactions: int  # mined attempts: mints, fee bumps, nonce fills, reverted ones
    gas_wei: int  # sum of gas used x effective gas price
    l1_fee_wei: int  # sum of the receipts' L1 data fees (OP Stack)

    @property
    def total_wei(self) -> int:
        return self.gas_wei + self.l1_fee_wei

    def as_dict(self) -> dict:
        return {
            "day": self.day.isoformat(),
            "transactions": self.transactions,
            "gas_wei": self.gas_wei,
            "l1_fee_wei": self.l1_fee_wei,
            "total_wei": self.total_wei,
            "total_eth": wei_as_eth(self.total_wei),
        }

    def __str__(self) -> str:
        return (
            f"{wei_as_eth(self.total_wei)} on {self.day.isoformat()} "
            f"({self.transactions} transactions; L1 data fee {wei_as_eth(self.l1_fee_wei)})"
        )


def mint_cost_of_day(*, day: dt.date | None = None) -> MintCost:
    """The cost of minting on a UTC day (today by default): gas used x effective gas price
    plus the L1 data fee, over our attempts mined that day (their block's day), as recorded
    from their receipts (mint_status, the Backstage minting page)."""
    day = day or today_utc()
    wei = DecimalField(max_digits=80, decimal_places=0)
    totals = MintAttempt.objects.filter(mined_on=day).aggregate(
        transactions=Count("pk"),
        gas=Sum(F("gas_used") * F("effective_gas_price"), output_field=wei),
        l1=Sum("l1_fee"),
    )
    return MintCost(
        day=day,
        transactions=totals["transactions"],
        gas_wei=int(totals["gas"] or 0),
        l1_fee_wei=int(totals["l1"] or 0),
    )
