"""Reads of the minting app (writes are in ``minting.services``)."""

from __future__ import annotations

import datetime as dt

from core.clock import today_utc
from deposits.models import DepositRequest
from minting.models import MintTransaction


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
