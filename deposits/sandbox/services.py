"""What the fake ZenoPay does: accept creates, answer order-status (with the knobs'
misbehaviour), play the customer's phone, and fire webhooks.

It behaves like ZenoPay from the outside (same paths, same JSON); nothing outside this app
knows it is a fake.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from core.clock import now
from core.services import task_enqueue_on_commit
from deposits.sandbox.models import SandboxKnobs, SandboxOrder
from deposits.sandbox.selectors import (
    sandbox_knobs_get,
    sandbox_order_data,
    sandbox_order_get,
)

logger = logging.getLogger(__name__)

State = SandboxOrder.State
WEBHOOK_TASK = "deposits.sandbox.tasks.sandbox_fire_webhook"
WEBHOOK_TIMEOUT_S = 10
CREATE_FIELDS = ("order_id", "buyer_email", "buyer_name", "buyer_phone", "amount")
_LOCAL_MOBILE = re.compile(r"0[67]\d{8}")
_ALNUM = string.ascii_uppercase + string.digits
# Network by prefix (the first three digits of the local form), as ZenoPay names channels.
_CHANNELS = {
    **dict.fromkeys(("074", "075", "076"), "MPESA-TZ"),
    **dict.fromkeys(("065", "067", "071", "077"), "TIGO-TZ"),
    **dict.fromkeys(("068", "069", "078"), "AIRTEL-TZ"),
    **dict.fromkeys(("061", "062"), "HALOPESA-TZ"),
    "073": "TTCL-TZ",
}

_http = requests.Session()


def sandbox_http_session() -> requests.Session:
    """The session the sandbox's webhooks go out on (tests mount transport adapters on it)."""
    return _http


class SandboxError(Exception):
    """A phone-page action that cannot happen (unknown order, already decided, bad amount)."""


class SandboxRefusal(Exception):
    """A create ZenoPay would refuse; carries the HTTP status and the JSON error answer."""

    def __init__(self, http_status: int, message: str, resultcode: str | None = None):
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.resultcode = resultcode or str(http_status)

    @property
    def body(self) -> dict:
        return {"status": "error", "resultcode": self.resultcode, "message": self.message}


@dataclass(frozen=True)
class SandboxAnswer:
    """An HTTP answer: a JSON body (dict) or a text one (str)."""

    http_status: int
    body: dict | str


# --- Create ----------------------------------------------------------------------------------


def _validated(payload: Mapping) -> dict:
    missing = [name for name in CREATE_FIELDS if payload.get(name) in (None, "")]
    if missing:
        raise SandboxRefusal(400, f"Missing required field(s): {', '.join(missing)}")
    text_fields = ("order_id", "buyer_email", "buyer_name", "buyer_phone")
    if not all(isinstance(payload[name], str) for name in text_fields):
        raise SandboxRefusal(
            400, "order_id, buyer_email, buyer_name and buyer_phone must be strings"
        )
    amount = payload["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise SandboxRefusal(400, "amount must be an integer number of shillings")
    if amount <= 0:
        raise SandboxRefusal(400, "amount must be greater than zero")
    phone = payload["buyer_phone"].strip()
    if not _LOCAL_MOBILE.fullmatch(phone):
        raise SandboxRefusal(
            400, "Invalid buyer_phone: use a Tanzanian mobile number in the form 07XXXXXXXX"
        )
    if "@" not in payload["buyer_email"]:
        raise SandboxRefusal(400, "Invalid buyer_email")
    webhook_url = payload.get("webhook_url") or ""
    if not isinstance(webhook_url, str) or (
        webhook_url and not webhook_url.startswith(("http://", "https://"))
    ):
        raise SandboxRefusal(400, "Invalid webhook_url")
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise SandboxRefusal(400, "metadata must be an object")
    return {
        "order_id": payload["order_id"].strip(),
        "buyer_email": payload["buyer_email"],
        "buyer_name": payload["buyer_name"],
        "buyer_phone": phone,
        "amount_tzs": amount,
        "webhook_url": webhook_url,
        "metadata": metadata,
    }


def sandbox_order_create(*, payload: Mapping) -> SandboxOrder:
    """Record a create call's order (a USSD push now waiting on the phone), or raise
    SandboxRefusal with the error ZenoPay would answer."""
    fields = _validated(payload)
    try:
        with transaction.atomic():
            return SandboxOrder.objects.create(
                **fields, reference="".join(secrets.choice(string.digits) for _ in range(10))
            )
    except IntegrityError:
        raise SandboxRefusal(409, f"Duplicate order_id {fields['order_id']}") from None


def sandbox_create_answer(order: SandboxOrder) -> dict:
    return {
        "status": "success",
        "resultcode": "000",
        "message": "Request in progress. You will receive a callback shortly",
        "order_id": order.order_id,
    }


# --- Order status -----------------------------------------------------------------------------


def _knob_consume(field: str) -> bool:
    """Take one from a counter knob; compare-and-set, so two answers never share one."""
    return bool(
        SandboxKnobs.objects.filter(pk=1, **{f"{field}__gt": 0}).update(**{field: F(field) - 1})
    )


def _not_found() -> SandboxAnswer:
    return SandboxAnswer(
        200,
        {
            "result": "FAIL",
            "resultcode": "404",
            "message": "Order not found",
            "reference": None,
            "data": [],
        },
    )


SERVER_ERROR_PAGE = "<html><body><h1>500 Internal Server Error</h1></body></html>"


def sandbox_status_answer(*, order_id: str) -> SandboxAnswer:
    """The order-status answer; the knobs' counters are consumed first (one per answer)."""
    if _knob_consume("server_error_polls"):
        return SandboxAnswer(500, SERVER_ERROR_PAGE)
    if _knob_consume("not_found_polls"):
        return _not_found()
    if _knob_consume("empty_data_polls"):
        return SandboxAnswer(
            200,
            {
                "result": "SUCCESS",
                "resultcode": "000",
                "message": "Order fetch successful",
                "reference": None,
                "data": [],
            },
        )
    order = sandbox_order_get(order_id=order_id)
    if order is None:
        return _not_found()
    return SandboxAnswer(
        200,
        {
            "reference": order.reference,
            "resultcode": "000",
            "result": "SUCCESS",
            "message": "Order fetch successful",
            "data": [sandbox_order_data(order)],
        },
    )


# --- The phone ------------------------------------------------------------------------------


def _channel_for(phone: str) -> str:
    return _CHANNELS.get(phone[:3], "MOBILE-TZ")


def _transid_next() -> str:
    """The reuse_transid knob, taken once by compare-and-set, or a fresh SBX id."""
    wanted = sandbox_knobs_get().reuse_transid
    if wanted and SandboxKnobs.objects.filter(pk=1, reuse_transid=wanted).update(reuse_transid=""):
        return wanted
    return "SBX" + "".join(secrets.choice(_ALNUM) for _ in range(10))


def _decide(order_id: str, **changes) -> SandboxOrder:
    order = sandbox_order_get(order_id=order_id)
    if order is None:
        raise SandboxError(f"There is no sandbox order {order_id}.")
    updated = SandboxOrder.objects.filter(pk=order.pk, state=State.PENDING).update(
        decided_at=now(), **changes
    )
    if updated != 1:
        raise SandboxError(
            f"Order {order_id} is already {order.state}; only a pending push can be answered."
        )
    order.refresh_from_db()
    if _webhook_due(order):
        task_enqueue_on_commit(WEBHOOK_TASK, order.order_id)
    return order


def _webhook_due(order: SandboxOrder) -> bool:
    """ZenoPay documents webhooks for completed payments only; a declined order gets one
    only with the webhook_on_failure knob."""
    if order.state == State.PENDING or order.drop_webhook or not order.webhook_url:
        return False
    return order.state == State.COMPLETED or sandbox_knobs_get().webhook_on_failure


@transaction.atomic
def sandbox_order_approve(
    *, order_id: str, amount_tzs: int | None = None, drop_webhook: bool = False
) -> SandboxOrder:
    """The customer enters the PIN: paid (``amount_tzs`` when they paid another amount).
    The webhook is fired by a task after commit, unless ``drop_webhook``."""
    if amount_tzs is not None and (
        isinstance(amount_tzs, bool) or not isinstance(amount_tzs, int) or amount_tzs <= 0
    ):
        raise SandboxError("The paid amount must be a whole number of shillings above zero.")
    order = sandbox_order_get(order_id=order_id)
    if order is None:
        raise SandboxError(f"There is no sandbox order {order_id}.")
    return _decide(
        order_id,
        state=State.COMPLETED,
        paid_amount_tzs=amount_tzs or order.amount_tzs,
        transid=_transid_next(),
        channel=_channel_for(order.buyer_phone),
        msisdn="255" + order.buyer_phone[1:],
        drop_webhook=drop_webhook,
    )


@transaction.atomic
def sandbox_order_decline(*, order_id: str) -> SandboxOrder:
    """The customer declines the prompt (or lets it fail): FAILED. No webhook unless the
    webhook_on_failure knob is on: ZenoPay documents webhooks for completed payments only."""
    return _decide(order_id, state=State.FAILED)


def sandbox_knobs_set(
    *,
    empty_data_polls: int | None = None,
    not_found_polls: int | None = None,
    server_error_polls: int | None = None,
    create_times_out: bool | None = None,
    reuse_transid: str | None = None,
    webhook_with_api_key: bool | None = None,
    webhook_on_failure: bool | None = None,
    webhook_with_payment_fields: bool | None = None,
) -> SandboxKnobs:
    """Set the given knobs (None leaves a knob as it is)."""
    changes = {
        name: value
        for name, value in {
            "empty_data_polls": empty_data_polls,
            "not_found_polls": not_found_polls,
            "server_error_polls": server_error_polls,
            "create_times_out": create_times_out,
            "reuse_transid": reuse_transid,
            "webhook_with_api_key": webhook_with_api_key,
            "webhook_on_failure": webhook_on_failure,
            "webhook_with_payment_fields": webhook_with_payment_fields,
        }.items()
        if value is not None
    }
    for name in ("empty_data_polls", "not_found_polls", "server_error_polls"):
        if name in changes and (not isinstance(changes[name], int) or changes[name] < 0):
            raise SandboxError(f"{name} must be a whole number, zero or more.")
    if "reuse_transid" in changes:
        changes["reuse_transid"] = changes["reuse_transid"].strip()
    knobs, _created = SandboxKnobs.objects.update_or_create(pk=1, defaults=changes)
    return knobs


# --- Webhooks -------------------------------------------------------------------------------


def sandbox_webhook_payload(order: SandboxOrder, *, payment_fields: bool = False) -> dict:
    """ZenoPay's documented webhook body; ``payment_fields`` adds transid, channel and
    amount (the webhook_with_payment_fields knob)."""
    payload = {
        "order_id": order.order_id,
        "payment_status": order.state.upper(),
        "reference": order.reference,
        "metadata": order.metadata or {},
    }
    if payment_fields:
        payload |= {
            "transid": order.transid or None,
            "channel": order.channel or None,
            "amount": str(order.paid_amount_tzs or order.amount_tzs),
        }
    return payload


def sandbox_webhook_fire(*, order_id: str) -> int | None:
    """POST the webhook for a decided order to its webhook_url; returns the HTTP status (None
    when it did not get through or nothing was due: pending, dropped, no webhook_url, or a
    declined order without the webhook_on_failure knob).
    Called from the task, never inline: no database transaction is open around the network
    call."""
    order = sandbox_order_get(order_id=order_id)
    if order is None or not _webhook_due(order):
        return None
    knobs = sandbox_knobs_get()
    headers = {}
    if knobs.webhook_with_api_key:
        headers["x-api-key"] = settings.ZENOPAY_API_KEY or ""
    try:
        response = _http.post(
            order.webhook_url,
            json=sandbox_webhook_payload(order, payment_fields=knobs.webhook_with_payment_fields),
            headers=headers,
            timeout=WEBHOOK_TIMEOUT_S,
            allow_redirects=False,
        )
        http_status = response.status_code
    except requests.RequestException as exc:
        logger.info(
            "sandbox webhook order=%s did not get through (%s)", order_id, type(exc).__name__
        )
        http_status = None
    SandboxOrder.objects.filter(pk=order.pk).update(
        webhook_fired_at=now(), webhook_response_status=http_status
    )
    logger.info(
        "sandbox webhook order=%s payment_status=%s answered %s",
        order_id,
        order.state.upper(),
        http_status,
    )
    return http_status
