"""Reads of the ZenoPay sandbox."""

from __future__ import annotations

from django.utils import timezone

from deposits.sandbox.models import SandboxKnobs, SandboxOrder

RECENT_LIMIT = 20


def sandbox_knobs_get() -> SandboxKnobs:
    """The knobs; defaults (all off) until someone sets one."""
    return SandboxKnobs.objects.filter(pk=1).first() or SandboxKnobs(pk=1)


def sandbox_order_get(*, order_id: str) -> SandboxOrder | None:
    return SandboxOrder.objects.filter(order_id=order_id).first()


def sandbox_orders_pending() -> list[SandboxOrder]:
    """USSD pushes waiting on the phone, newest first."""
    return list(
        SandboxOrder.objects.filter(state=SandboxOrder.State.PENDING).order_by("-created_at")
    )


def sandbox_orders_recent(*, limit: int = RECENT_LIMIT) -> list[SandboxOrder]:
    """The latest answered pushes, newest decision first."""
    return list(
        SandboxOrder.objects.exclude(state=SandboxOrder.State.PENDING).order_by("-decided_at")[
            :limit
        ]
    )


def sandbox_orders_all() -> list[SandboxOrder]:
    return list(SandboxOrder.objects.order_by("created_at"))


def sandbox_order_data(order: SandboxOrder) -> dict:
    """One entry of an order-status answer's ``data``, shaped like ZenoPay's (the amount is
    a string, creation_date is East Africa local time, unknown fields are null)."""
    created = timezone.localtime(order.created_at).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "order_id": order.order_id,
        "creation_date": created,
        "amount": str(order.paid_amount_tzs or order.amount_tzs),
        "payment_status": order.state.upper(),
        "transid": order.transid or None,
        "channel": order.channel or None,
        "reference": order.reference,
        "msisdn": order.msisdn or None,
    }
