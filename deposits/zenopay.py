"""The ZenoPay HTTP client (DESIGN §6): the only code in the project that speaks to ZenoPay.

Two calls, one exception hierarchy:

- ``zenopay_create`` asks ZenoPay to push the USSD prompt. It answers ``CreateAccepted`` or
  raises ``ZenoPayRefused`` (ZenoPay said no: nothing was pushed) or ``ZenoPayUnavailable``
  (we do not know what happened: the customer may have been prompted and may pay). It is
  never retried here; the caller decides.
- ``zenopay_order_status`` never raises for a bad answer: anything we cannot read as a
  definite payment state comes back as ``known=False`` with a reason ("try later, never
  cancel on it"). A COMPLETED answer whose payment fields cannot be read stays known, with
  ``unreadable`` saying which: the customer may have paid, so the caller holds the deposit.
  Identifiers come back whole, never clipped; the raw body comes back storable.

The API key travels only in the ``x-api-key`` header; it is never put in a log line or an
exception message, and we never follow redirects (requests re-sends custom headers such as
``x-api-key`` to whatever host a redirect names).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import requests
from django.conf import settings

from core.text import (
    text_free_storable,
    text_identifier_fits,
    text_json_loads,
    text_raw_storable,
)

logger = logging.getLogger(__name__)

RAW_BODY_CAP = 16 * 1024  # characters of an answer we keep (stored in PaymentNotification)
MESSAGE_CAP = 500
PAYMENT_STATUS_CAP = 32  # a payment status is a short word (PaymentNotification.payment_status)
AMOUNT_MAX_DIGITS = 18  # more digits than any amount a BigIntegerField holds can have
CONNECT_TIMEOUT_CAP_S = 10  # a connect that takes longer than this will not succeed later
REDACTED = "[redacted]"

_session = requests.Session()


def zenopay_session() -> requests.Session:
    """The one session every ZenoPay call goes through (tests mount transport adapters on it)."""
    return _session


# --- Errors --------------------------------------------------------------------------------


class ZenoPayError(Exception):
    """Base of everything this client raises."""


class ZenoPayUnavailable(ZenoPayError):
    """No usable answer (timeout, connection error, 5xx, non-JSON, unexpected shape): the
    outcome is unknown."""


class ZenoPayRefused(ZenoPayError):
    """ZenoPay answered a create with a definite no; nothing was pushed to the phone."""

    def __init__(self, message: str, *, resultcode: str = "", http_status: int | None = None):
        super().__init__(message)
        self.message = message
        self.resultcode = resultcode
        self.http_status = http_status


# --- Answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateAccepted:
    order_id: str
    resultcode: str
    message: str
    raw: dict


@dataclass(frozen=True)
class OrderStatus:
    """What an order-status call told us. ``known`` is False when the answer says nothing
    definite (``reason`` says why); only then are the payment fields all None."""

    known: bool
    payment_status: str | None  # data[0].payment_status, upper-cased: COMPLETED, PENDING, ...
    order_id: str
    amount_tzs: int | None  # whole shillings, from data[0].amount ("1000" or "1000.00")
    transid: str | None  # the mobile-money transaction id; may be null
    reference: str | None  # ZenoPay's own reference (data[0].reference)
    channel: str | None
    msisdn: str | None
    reason: str
    raw_body: str  # the answer's text, storable (NUL, bad UTF-8 escaped), at most RAW_BODY_CAP
    http_status: int | None
    # A payment field present in a known answer that cannot be read (an amount that is not
    # whole shillings, a transid that is an object...): its name and why; "" when all are
    # readable. Identifiers are never clipped here: whether they fit a column is the caller's
    # judgement (deposits.services.payments holds a paid deposit as "unreadable reference").
    unreadable: str = ""
    # An answer that plainly says ZenoPay holds no payment data for the order ("not found",
    # empty data, HTTP 404) — the only unknown answer that lets a manual confirmation stand.
    no_data: bool = False
    # An unknown answer that is not a plain "not found" (no answer, 5xx, 401/403, not JSON, a
    # shape we cannot read, a 404 that is not ZenoPay's): repeated across orders it means a
    # wrong host, path or key, or a changed API (deposits.services.payments alerts on it).
    drift: bool = False


# --- Helpers -------------------------------------------------------------------------------


def _redact(text: str) -> str:
    key = settings.ZENOPAY_API_KEY or ""
    return text.replace(key, REDACTED) if key else text


def _url(path: str) -> str:
    return f"{settings.ZENOPAY_BASE_URL.rstrip('/')}/{path.lstrip('/')}"


def _headers() -> dict[str, str]:
    # Sent even when the key is empty: ZenoPay then refuses clearly instead of guessing.
    return {"x-api-key": settings.ZENOPAY_API_KEY or "", "Accept": "application/json"}


def _timeout() -> tuple[int, int]:
    read = settings.ZENOPAY_TIMEOUT
    return (min(read, CONNECT_TIMEOUT_CAP_S), read)


def _send(method: str, url: str, **kwargs) -> requests.Response:
    """One HTTP exchange; every transport failure becomes ZenoPayUnavailable."""
    host = urlsplit(url).netloc
    try:
        return _session.request(
            method, url, headers=_headers(), timeout=_timeout(), allow_redirects=False, **kwargs
        )
    except requests.Timeout:
        raise ZenoPayUnavailable(
            f"ZenoPay at {host} did not answer within {settings.ZENOPAY_TIMEOUT} s"
        ) from None
    except requests.ConnectionError as exc:
        raise ZenoPayUnavailable(
            f"could not reach ZenoPay at {host} ({type(exc).__name__})"
        ) from None
    except requests.RequestException as exc:
        raise ZenoPayUnavailable(
            f"the call to ZenoPay at {host} failed ({type(exc).__name__})"
        ) from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _json(response: requests.Response):
    """The decoded answer, floats as Decimal (money never goes through a float). Any answer
    json cannot decode, or nested absurdly deep, is a ValueError."""
    return text_json_loads(
        response.content,
        parse_float=Decimal,
        parse_int=_int_or_decimal,
        parse_constant=_reject_constant,
    )


def _int_or_decimal(digits: str) -> int | Decimal:
    # int() refuses more than 4,300 digits (ValueError: the whole answer unreadable); as a
    # Decimal the one absurd number stays in an answer that can still be read and held.
    return int(digits) if len(digits) <= 40 else Decimal(digits)


def _raw_body(response: requests.Response) -> str:
    # Redacted before it is capped, so a key cut in half at the cap cannot survive.
    whole = text_raw_storable(response.content, max_chars=4 * len(response.content) + 16)
    return _redact(whole)[:RAW_BODY_CAP]


def _message_of(payload: dict) -> str:
    for key in ("message", "detail", "error"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            # Free text: it ends up in initiation_error, a cancellation reason, a log line.
            return text_free_storable(_redact(value), max_length=MESSAGE_CAP)
    return ""


def _text(value) -> str | None:
    """A scalar field as text; null, empty or not a scalar → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _identifier(entry: dict, key: str) -> tuple[str | None, str]:
    """(text, "") of an identifier field; (None, "") when missing; (None, why) when present
    but not text or a number (an object, a list, a boolean)."""
    value = entry.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, ""
    text = _text(value)
    if text is None:
        return None, f"{key} is a {type(value).__name__}, not text"
    return text, ""


# ASCII digits only: "\d" would also read Arabic-Indic or superscript digits as shillings.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def _amount_tzs(value) -> tuple[int | None, str]:
    """(whole shillings, "") or (None, why it is unreadable). A missing amount is (None, "")."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, ""
    if isinstance(value, bool):
        return None, f"amount {value!r} is not a number"
    if isinstance(value, int):
        return (value, "") if value >= 0 else (None, f"amount {value} is negative")
    text = str(value).strip() if isinstance(value, str | Decimal) else ""
    match = _AMOUNT.fullmatch(text)
    if not match:
        shown = text_free_storable(repr(str(value)[:40]), max_length=60)
        return None, f"amount {shown} is not a whole number of shillings"
    if match.group(2) and match.group(2).strip("0"):
        return None, f"amount {text[:40]} has a fraction of a shilling"
    whole = match.group(1).lstrip("0") or "0"
    if len(whole) > AMOUNT_MAX_DIGITS:  # int() of thousands of digits even raises
        return None, f"amount of {len(whole)} digits is not a payment amount"
    return int(whole), ""


# --- Create --------------------------------------------------------------------------------


def zenopay_create(
    *,
    order_id: str,
    buyer_email: str,
    buyer_name: str,
    buyer_phone: str,
    amount_tzs: int,
    webhook_url: str,
) -> CreateAccepted:
    """Ask ZenoPay to push the USSD prompt for ``order_id``. Never retried.

    ``buyer_phone`` is in the local 0XXXXXXXXX form; ``amount_tzs`` whole shillings."""
    if isinstance(amount_tzs, bool) or not isinstance(amount_tzs, int) or amount_tzs <= 0:
        raise ValueError(f"amount_tzs must be a positive whole number, got {amount_tzs!r}")
    body = {
        "order_id": order_id,
        "buyer_email": buyer_email,
        "buyer_name": buyer_name,
        "buyer_phone": buyer_phone,
        "amount": amount_tzs,
        "webhook_url": webhook_url,
    }
    try:
        response = _send("POST", _url(settings.ZENOPAY_CREATE_PATH), json=body)
        accepted = _create_answer(order_id, response)
    except ZenoPayRefused as exc:
        logger.info(
            "ZenoPay create order=%s refused http=%s resultcode=%s: %s",
            order_id,
            exc.http_status,
            exc.resultcode,
            exc.message,
        )
        raise
    except ZenoPayUnavailable as exc:
        logger.info("ZenoPay create order=%s outcome unknown: %s", order_id, exc)
        raise
    logger.info("ZenoPay create order=%s accepted resultcode=%s", order_id, accepted.resultcode)
    return accepted


def _create_answer(order_id: str, response: requests.Response) -> CreateAccepted:
    http = response.status_code
    if http >= 500 or 300 <= http < 400:
        raise ZenoPayUnavailable(f"ZenoPay answered the create with HTTP {http}")
    try:
        payload = _json(response)
    except ValueError:
        raise ZenoPayUnavailable(
            f"ZenoPay's answer to the create is not JSON (HTTP {http})"
        ) from None
    if not isinstance(payload, dict):
        raise ZenoPayUnavailable(
            f"ZenoPay's answer to the create has an unexpected shape (HTTP {http})"
        )
    message = _message_of(payload)
    resultcode = _text(payload.get("resultcode")) or ""
    status = (_text(payload.get("status")) or "").lower()
    if http in (408, 429):
        # "Too slow" and "too many": ZenoPay has not said no to this order; try to learn later.
        raise ZenoPayUnavailable(f"ZenoPay answered the create with HTTP {http}")
    if http >= 400 or status == "error":
        raise ZenoPayRefused(
            message or f"ZenoPay refused the create (HTTP {http})",
            resultcode=resultcode,
            http_status=http,
        )
    if status != "success":
        raise ZenoPayUnavailable(
            f"ZenoPay's answer to the create has no success or error status (HTTP {http})"
        )
    answered_for = _text(payload.get("order_id"))
    if answered_for is not None and answered_for != order_id:
        raise ZenoPayUnavailable("ZenoPay's answer to the create names another order")
    try:
        raw = _plain(payload)
    except RecursionError:  # json decoded it, but too deep to copy: keep the top level only
        raw = {key: value for key, value in payload.items() if isinstance(value, str | int)}
    return CreateAccepted(order_id=order_id, resultcode=resultcode, message=message, raw=raw)


def _plain(payload):
    """The decoded answer with Decimals turned back into JSON-safe values (str), for storage."""
    if isinstance(payload, dict):
        return {key: _plain(value) for key, value in payload.items()}
    if isinstance(payload, list):
        return [_plain(value) for value in payload]
    if isinstance(payload, Decimal):
        return str(payload)
    return payload


# --- Order status --------------------------------------------------------------------------


def zenopay_order_status(*, order_id: str) -> OrderStatus:
    """What ZenoPay says about ``order_id``; ``known=False`` with a reason when it says
    nothing definite. Never raises for a bad or missing answer."""
    try:
        response = _send("GET", _url(settings.ZENOPAY_STATUS_PATH), params={"order_id": order_id})
    except ZenoPayUnavailable as exc:
        status = _unknown(order_id, str(exc), raw_body="", http_status=None)
    else:
        try:
            status = _status_answer(order_id, response)
        except Exception as exc:  # a shape the reader did not foresee: say so, never raise
            logger.exception(
                "ZenoPay order-status order=%s: the answer could not be read", order_id
            )
            status = _unknown(
                order_id,
                f"the answer could not be read ({type(exc).__name__})",
                raw_body=_raw_body(response),
                http_status=response.status_code,
            )
    logger.info(
        "ZenoPay order-status order=%s http=%s known=%s payment_status=%s%s",
        order_id,
        status.http_status,
        status.known,
        status.payment_status,
        "" if status.known else f" reason={status.reason}",
    )
    return status


def _unknown(
    order_id: str,
    reason: str,
    *,
    raw_body: str,
    http_status: int | None,
    no_data: bool = False,
    drift: bool | None = None,
) -> OrderStatus:
    return OrderStatus(
        known=False,
        payment_status=None,
        order_id=order_id,
        amount_tzs=None,
        transid=None,
        reference=None,
        channel=None,
        msisdn=None,
        reason=_redact(reason),
        raw_body=raw_body,
        http_status=http_status,
        no_data=no_data,
        drift=not no_data if drift is None else drift,
    )


def _status_answer(order_id: str, response: requests.Response) -> OrderStatus:
    http = response.status_code
    raw_body = _raw_body(response)

    def unknown(reason: str, *, no_data: bool = False, drift: bool | None = None) -> OrderStatus:
        return _unknown(
            order_id, reason, raw_body=raw_body, http_status=http, no_data=no_data, drift=drift
        )

    if http >= 500 or 300 <= http < 400:
        return unknown(f"ZenoPay answered HTTP {http}")
    try:
        payload = _json(response)
    except ValueError:
        return unknown(f"the answer is not JSON (HTTP {http})")
    if not isinstance(payload, dict):
        return unknown(f"the answer has an unexpected shape (HTTP {http})")
    message = _message_of(payload)
    if http >= 400:
        # A 404 without ZenoPay's result fields is a wrong host or path, not ZenoPay saying
        # it holds nothing for the order: drift, and no ground for a manual confirmation.
        zenopay_not_found = http == 404 and bool({"result", "resultcode"} & payload.keys())
        return unknown(
            f"ZenoPay answered HTTP {http}" + (f": {message}" if message else ""),
            no_data=zenopay_not_found,
            drift=not zenopay_not_found,
        )
    data = payload.get("data")
    if isinstance(data, dict):
        data = [data]  # some answers carry the one order as an object, not a list
    if not data:
        # The top-level result only explains why there is no data; it never says "paid" or
        # "not paid" (SUCCESS only means the query worked).
        result = (_text(payload.get("result")) or "").upper()
        if result in ("FAIL", "FAILED"):
            return unknown(
                f"ZenoPay answered {result}" + (f": {message}" if message else ""), no_data=True
            )
        return unknown(
            "the answer carries no payment data (empty data)",
            no_data=isinstance(data, list) and result in ("SUCCESS", ""),
        )
    if not isinstance(data, list) or not isinstance(data[0], dict):
        return unknown("the answer's data has an unexpected shape")
    entry = data[0]
    answered_for = _text(entry.get("order_id"))
    if answered_for is not None and answered_for != order_id:
        return unknown("the answer's data is for another order")
    payment_status = (_text(entry.get("payment_status")) or "").upper()
    if not payment_status:
        return unknown("the answer's data has no payment_status")
    if not text_identifier_fits(payment_status, max_length=PAYMENT_STATUS_CAP):
        # Not one of the short words ZenoPay uses, so certainly not COMPLETED: nothing definite.
        return unknown(
            f"the answer's payment_status ({len(payment_status)} characters) "
            f"is not a payment status"
        )
    amount_tzs, amount_problem = _amount_tzs(entry.get("amount"))
    if amount_problem and payment_status != "COMPLETED":
        return unknown(amount_problem)
    # A COMPLETED answer stays known even when a payment field is unreadable: the customer
    # may have paid, so the deposit must be held for a person, not polled until it expires.
    transid, transid_problem = _identifier(entry, "transid")
    reference, reference_problem = _identifier(entry, "reference")
    msisdn, msisdn_problem = _identifier(entry, "msisdn")
    problems = [
        p for p in (amount_problem, transid_problem, reference_problem, msisdn_problem) if p
    ]
    return OrderStatus(
        known=True,
        payment_status=payment_status,
        order_id=order_id,
        amount_tzs=amount_tzs,
        transid=transid,
        reference=reference,
        channel=_text(entry.get("channel")),
        msisdn=msisdn,
        reason="",
        raw_body=raw_body,
        http_status=http,
        unreadable="; ".join(problems),
    )
