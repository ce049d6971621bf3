"""ZenoPay: payment initiation, order-status checks, webhook hints, polling and expiry
(DESIGN §5.1, §6).

Only our own order-status answer confirms a payment; a webhook is a hint that makes the
check happen now. Every webhook call and every order-status answer is stored first, in its
own committed transaction, then applied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q

from core.clock import now
from core.services import alert_raise, task_enqueue_on_commit
from deposits.exceptions import TransitionRefused
from deposits.models import DepositRequest, LimitEvent, OrphanPayment, PaymentNotification
from deposits.phones import phone_last9, phone_local_form
from deposits.services.intake import period_starts, user_deposit_usage
from deposits.services.transitions import (
    HOLDABLE,
    deposit_cancel,
    deposit_hold_set,
    deposit_payment_confirm,
    deposit_recover,
)
from deposits.zenopay import (
    OrderStatus,
    ZenoPayRefused,
    ZenoPayUnavailable,
    zenopay_create,
    zenopay_order_status,
)

logger = logging.getLogger("deposits.zenopay")
S = DepositRequest.Status
Initiation = DepositRequest.Initiation
Outcome = PaymentNotification.Outcome
ZENOPAY = DepositRequest.Provider.ZENOPAY

BODY_CAP = 16 * 1024
CHECK_DEBOUNCE = dt.timedelta(seconds=10)
POLL_BACKOFF_S = (30, 60, 120, 300, 600)
POLL_EVERY_S_AFTER_BACKOFF = 1800
INITIATION_REDRIVE_AFTER = dt.timedelta(minutes=1)
EXPIRE_AFTER = dt.timedelta(hours=72)
CANCELLED_CHECKS_FOR = dt.timedelta(days=14)
CANCELLED_CHECK_EVERY = dt.timedelta(days=1)
ADVANCED = (S.MINT_PENDING, S.MINT_PROCESSING, S.MINTED, S.MINT_FAILED, S.MINT_REQUIRES_SAFE,
            S.REFUNDED)


# --- The webhook token ------------------------------------------------------------------------


def webhook_token(order_id: str) -> str:
    """32 hex characters: HMAC of the order id with SECRET_KEY, carried in webhook_url."""
    return hmac.new(settings.SECRET_KEY.encode(), str(order_id).encode(),
                    hashlib.sha256).hexdigest()[:32]


def webhook_url_for(deposit_id) -> str:
    return f"{settings.APP_URL}/api/webhooks/zenopay?t={webhook_token(str(deposit_id))}"


# --- Initiation ----------------------------------------------------------------------------------


def payment_initiate(*, deposit_id) -> str:
    """Ask ZenoPay to push the USSD prompt, at most once per deposit.

    ``initiation`` moves pending → requested and commits before the HTTP call, so a
    redelivered task finds ``requested`` and leaves the deposit to polling."""
    with transaction.atomic():
        claimed = DepositRequest.objects.filter(
            pk=deposit_id, payment_provider=ZENOPAY, status=S.SUBMITTED,
            initiation=Initiation.PENDING, hold_reason="").update(
            initiation=Initiation.REQUESTED, updated_at=now())
    if claimed != 1:
        return "skipped"
    deposit = DepositRequest.objects.select_related("user").get(pk=deposit_id)
    try:
        zenopay_create(
            order_id=str(deposit.pk), buyer_email=deposit.user.email,
            buyer_name=deposit.user.full_name or deposit.user.email,
            buyer_phone=phone_local_form(deposit.buyer_phone), amount_tzs=deposit.amount_tzs,
            webhook_url=webhook_url_for(deposit.pk))
    except ZenoPayRefused as exc:
        _initiation_refused(deposit_id, str(exc))
        return "refused"
    except ZenoPayUnavailable as exc:
        # The customer may have been prompted and may pay: keep polling, never cancel.
        DepositRequest.objects.filter(pk=deposit_id, initiation=Initiation.REQUESTED).update(
            initiation=Initiation.UNCERTAIN, initiation_error=str(exc)[:500],
            next_poll_at=now() + dt.timedelta(seconds=POLL_BACKOFF_S[0]), updated_at=now())
        logger.warning("ZenoPay create outcome unknown deposit=%s: %s", deposit_id, exc)
        return "uncertain"
    logger.info("ZenoPay payment requested deposit=%s", deposit_id)
    return "requested"


@transaction.atomic
def _initiation_refused(deposit_id, message: str) -> None:
    DepositRequest.objects.filter(pk=deposit_id, initiation=Initiation.REQUESTED).update(
        initiation=Initiation.REFUSED, initiation_error=message[:500], updated_at=now())
    try:
        deposit_cancel(deposit_id=deposit_id, source="system",
                       reason=f"The payment request was refused: {message}")
    except TransitionRefused:
        pass  # already moved on (e.g. a payment confirmed meanwhile): nothing to cancel


def payments_initiate_due(*, limit: int = 100) -> int:
    """Re-drive creates whose initiation is still pending after a minute (lost messages)."""
    due = list(DepositRequest.objects.filter(
        payment_provider=ZENOPAY, status=S.SUBMITTED, initiation=Initiation.PENDING,
        hold_reason="", created_at__lt=now() - INITIATION_REDRIVE_AFTER)
        .order_by("created_at").values_list("pk", flat=True)[:limit])
    return sum(payment_initiate(deposit_id=pk) == "requested" for pk in due)


# --- Storing what ZenoPay said ---------------------------------------------------------------


def _notification_store(**fields) -> PaymentNotification:
    """Stored in its own committed transaction: survives whatever happens next."""
    with transaction.atomic():
        return PaymentNotification.objects.create(**fields)


def notification_decide(*, notification_id, outcome: str, note: str = "") -> bool:
    """Set the outcome once, by compare-and-set."""
    return bool(PaymentNotification.objects.filter(
        pk=notification_id, outcome=Outcome.PENDING).update(
        outcome=outcome, outcome_note=note[:1000], decided_at=now()))


# --- Applying an order-status answer (DESIGN §5.1) -------------------------------------------


@dataclass(frozen=True)
class Applied:
    outcome: str
    note: str


def _reference_of(status: OrderStatus) -> str:
    return (status.transid or status.reference or "").strip()


def _orphan_record(*, deposit: DepositRequest, status: OrderStatus, reason: str) -> None:
    OrphanPayment.objects.get_or_create(
        provider=ZENOPAY, psp_reference=_reference_of(status),
        defaults={"amount_tzs": status.amount_tzs, "phone": status.msisdn or "",
                  "channel": status.channel or "", "source_deposit": deposit,
                  "reason": reason})


def _payment_details(status: OrderStatus) -> dict:
    return {"paid_amount_tzs": status.amount_tzs, "psp_reference": _reference_of(status),
            "msisdn": status.msisdn, "channel": status.channel}


def _mismatch(deposit: DepositRequest, status: OrderStatus) -> str:
    if status.amount_tzs != deposit.amount_tzs:
        return (f"amount mismatch: paid {status.amount_tzs} TZS for a deposit of "
                f"{deposit.amount_tzs} TZS")
    if status.msisdn and phone_last9(status.msisdn) != phone_last9(deposit.buyer_phone):
        return "phone mismatch: paid from another number"
    return ""


def _reference_conflict(deposit: DepositRequest, status: OrderStatus, source: str) -> Applied:
    """One PSP reference confirms at most one deposit: hold and alert (DESIGN §5 Holds)."""
    ref = _reference_of(status)
    other = (DepositRequest.objects.filter(payment_provider=ZENOPAY, psp_reference=ref)
             .exclude(pk=deposit.pk).first())
    reason = f"PSP reference {ref} already confirmed deposit {other.pk if other else '?'}"
    deposit_hold_set(deposit_id=deposit.pk, reason="conflicting PSP reference", source=source,
                     details={**_payment_details(status), "other_deposit": str(other and other.pk)})
    # Both are held, unless the other one is already being minted or minted.
    if other is not None and other.status in HOLDABLE and not other.hold_reason:
        try:
            deposit_hold_set(deposit_id=other.pk, reason="conflicting PSP reference",
                             source=source,
                             details={"psp_reference": ref, "other_deposit": str(deposit.pk)})
        except TransitionRefused:
            pass  # it moved on (claimed) a moment ago: only this one is held
    alert_raise(kind="psp reference conflict", key=ref, detail=reason)
    return Applied(Outcome.HELD, reason)


def _recovery_limit_events(deposit: DepositRequest) -> None:
    """A recovery may breach a limit; it is recorded, not refused (DESIGN §5 Limits)."""
    day_start, month_start = period_starts(now())
    checks = (
        (LimitEvent.Kind.USER_DAILY, day_start, settings.USER_DAILY_LIMIT_TZS),
        (LimitEvent.Kind.USER_MONTHLY, month_start, settings.USER_MONTHLY_LIMIT_TZS),
    )
    for _period, since, limit in checks:
        used = user_deposit_usage(user_id=deposit.user_id, since=since)
        if used > limit:
            LimitEvent.objects.create(user_id=deposit.user_id, kind=LimitEvent.Kind.RECOVERY,
                                      subject=str(deposit.user_id),
                                      requested_tzs=deposit.amount_tzs, limit_tzs=limit,
                                      used_tzs=used - deposit.amount_tzs, deposit=deposit)
            return


def _confirm(deposit: DepositRequest, status: OrderStatus, source: str) -> Applied:
    ref = _reference_of(status)
    metadata = {"psp_reference": ref, "channel": status.channel, "msisdn": status.msisdn}
    try:
        with transaction.atomic():
            if deposit.status == S.CANCELLED:
                target = deposit_recover(deposit_id=deposit.pk, amount_tzs=deposit.amount_tzs,
                                         psp_reference=ref, psp_channel=status.channel or "",
                                         source=source, metadata=metadata)
                _recovery_limit_events(DepositRequest.objects.get(pk=deposit.pk))
            else:
                target = deposit_payment_confirm(
                    deposit_id=deposit.pk, amount_tzs=deposit.amount_tzs, psp_reference=ref,
                    psp_channel=status.channel or "", source=source, metadata=metadata)
    except IntegrityError:  # the unique reference: another deposit took it concurrently
        return _reference_conflict(deposit, status, source)
    if source == "poll":
        logger.info("polled ZenoPay, found completed payment deposit=%s ref=%s", deposit.pk, ref)
    return Applied(Outcome.APPLIED, f"payment confirmed: {target}")


def _apply_completed(deposit: DepositRequest, status: OrderStatus, source: str) -> Applied:
    ref = _reference_of(status)
    if not ref or status.amount_tzs is None:
        return Applied(Outcome.IGNORED, "COMPLETED without a reference or an amount")
    if deposit.psp_reference == ref:
        return Applied(Outcome.DUPLICATE, "this payment already confirmed this deposit")
    if OrphanPayment.objects.filter(provider=ZENOPAY, psp_reference=ref).exists():
        # Already an orphan (moved to a new deposit, attached, dismissed or refunded):
        # one payment is handled once.
        return Applied(Outcome.DUPLICATE, f"payment {ref} is already an orphan payment")
    if deposit.status in ADVANCED:
        _orphan_record(deposit=deposit, status=status, reason="second payment")
        return Applied(Outcome.ORPHAN, f"second payment {ref} on a {deposit.status} deposit")
    if deposit.hold_reason:
        return Applied(Outcome.HELD, f"deposit on hold ({deposit.hold_reason})")
    if DepositRequest.objects.filter(payment_provider=ZENOPAY, psp_reference=ref) \
            .exclude(pk=deposit.pk).exists():
        return _reference_conflict(deposit, status, source)
    mismatch = _mismatch(deposit, status)
    if mismatch:
        deposit_hold_set(deposit_id=deposit.pk, reason=mismatch, source=source,
                         details=_payment_details(status))
        return Applied(Outcome.HELD, mismatch)
    if deposit.status == S.REJECTED:
        deposit_hold_set(deposit_id=deposit.pk, reason="payment received on a rejected deposit",
                         source=source, details=_payment_details(status))
        return Applied(Outcome.HELD, "payment on a rejected deposit")
    return _confirm(deposit, status, source)


def _apply_refused(deposit: DepositRequest, status: OrderStatus, source: str) -> Applied:
    if deposit.status != S.SUBMITTED or deposit.hold_reason:
        return Applied(Outcome.IGNORED, f"{status.payment_status} for a {deposit.status} deposit")
    reason = ("The payment was declined or cancelled on the phone."
              if status.payment_status == "FAILED" else "The payment was cancelled.")
    deposit_cancel(deposit_id=deposit.pk, reason=reason, source=source,
                   next_poll_at=now() + CANCELLED_CHECK_EVERY)
    return Applied(Outcome.APPLIED, f"cancelled: ZenoPay {status.payment_status}")


@transaction.atomic
def payment_status_apply(*, deposit_id, status: OrderStatus, source: str) -> Applied:
    deposit = DepositRequest.objects.select_for_update().get(pk=deposit_id)
    if not status.known:
        return Applied(Outcome.IGNORED, f"unknown: {status.reason}")
    if status.payment_status == "COMPLETED":
        return _apply_completed(deposit, status, source)
    if status.payment_status in ("FAILED", "CANCELLED"):
        return _apply_refused(deposit, status, source)
    return Applied(Outcome.IGNORED, f"payment {status.payment_status or 'unknown'}")


def _reschedule(deposit_id) -> None:
    deposit = DepositRequest.objects.filter(pk=deposit_id).values(
        "status", "poll_attempts", "cancelled_at").first()
    if deposit["status"] == S.SUBMITTED:
        attempts = deposit["poll_attempts"]
        wait = POLL_BACKOFF_S[attempts] if attempts < len(POLL_BACKOFF_S) \
            else POLL_EVERY_S_AFTER_BACKOFF
        DepositRequest.objects.filter(pk=deposit_id, status=S.SUBMITTED).update(
            poll_attempts=attempts + 1, next_poll_at=now() + dt.timedelta(seconds=wait))
    elif deposit["status"] == S.CANCELLED:
        cancelled_at = deposit["cancelled_at"] or now()
        keep_checking = now() - cancelled_at < CANCELLED_CHECKS_FOR
        DepositRequest.objects.filter(pk=deposit_id, status=S.CANCELLED).update(
            next_poll_at=now() + CANCELLED_CHECK_EVERY if keep_checking else None)


def deposit_check(*, deposit_id, source: str) -> str:
    """Ask ZenoPay about one deposit, at most once per 10 s per deposit, and apply it.

    Returns the outcome ("debounced" when another check ran within 10 s)."""
    at = now()
    claimed = DepositRequest.objects.filter(pk=deposit_id, payment_provider=ZENOPAY).filter(
        Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=at - CHECK_DEBOUNCE)).update(
        last_checked_at=at)
    if not claimed:
        return "debounced"
    status = zenopay_order_status(order_id=str(deposit_id))
    notification = _notification_store(
        kind=PaymentNotification.Kind.ORDER_STATUS, order_id=str(deposit_id),
        deposit_id=deposit_id, payment_status=status.payment_status or "",
        body=status.raw_body[:BODY_CAP], http_status=status.http_status)
    applied = payment_status_apply(deposit_id=deposit_id, status=status, source=source)
    notification_decide(notification_id=notification.pk, outcome=applied.outcome,
                        note=applied.note)
    _webhook_hints_decide(deposit_id, applied, before=notification.received_at)
    _reschedule(deposit_id)
    return applied.outcome


def _webhook_hints_decide(deposit_id, applied: Applied, *, before) -> None:
    """The webhooks that asked for this check learn what it found."""
    PaymentNotification.objects.filter(
        deposit_id=deposit_id, kind=PaymentNotification.Kind.WEBHOOK, outcome=Outcome.PENDING,
        received_at__lte=before).update(outcome=applied.outcome, decided_at=now(),
                                        outcome_note=f"order-status check: {applied.note}"[:1000])


# --- Polling and expiry ------------------------------------------------------------------------


def _due_for_poll(limit: int) -> list[uuid.UUID]:
    at = now()
    submitted = (DepositRequest.objects.filter(
        payment_provider=ZENOPAY, status=S.SUBMITTED, hold_reason="", next_poll_at__lte=at,
        initiation__in=[Initiation.REQUESTED, Initiation.UNCERTAIN])
        .order_by("-created_at").values_list("pk", flat=True)[:limit])
    cancelled = (DepositRequest.objects.filter(
        payment_provider=ZENOPAY, status=S.CANCELLED, hold_reason="", next_poll_at__lte=at,
        cancelled_at__gte=at - CANCELLED_CHECKS_FOR)
        .order_by("-created_at").values_list("pk", flat=True)[:limit])
    return list(submitted) + list(cancelled)


def payments_poll(*, limit: int = 50, deposit_id=None) -> dict[str, int]:
    """One poll run: due deposits newest first, in a bounded batch, so a backlog of
    abandoned attempts never starves fresh ones."""
    ids = [deposit_id] if deposit_id else _due_for_poll(limit)
    counts: dict[str, int] = {}
    for pk in ids:
        outcome = deposit_check(deposit_id=pk, source="poll")
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def deposits_expire_stale(*, limit: int = 200) -> int:
    """Cancel unpaid, not held, ZenoPay deposits after 72 h, after one last check."""
    stale = list(DepositRequest.objects.filter(
        payment_provider=ZENOPAY, status=S.SUBMITTED, hold_reason="",
        created_at__lt=now() - EXPIRE_AFTER).order_by("created_at")
        .values_list("pk", flat=True)[:limit])
    expired = 0
    for pk in stale:
        deposit_check(deposit_id=pk, source="system")
        try:
            deposit_cancel(deposit_id=pk, source="system",
                           reason="No payment arrived within 72 hours.",
                           next_poll_at=now() + CANCELLED_CHECK_EVERY)
            expired += 1
        except TransitionRefused:
            continue  # paid, held or moved on during the last check
    return expired


# --- Webhook hints (DESIGN §6) ---------------------------------------------------------------


@dataclass(frozen=True)
class WebhookResult:
    http_status: int
    reason: str


def _header_snapshot(headers: dict) -> dict:
    keep = ("content-type", "user-agent", "content-length", "x-forwarded-for")
    snapshot = {k: v[:200] for k, v in headers.items() if k.lower() in keep}
    if any(k.lower() == "x-api-key" for k in headers):
        snapshot["x-api-key"] = "[present]"  # never the value
    return snapshot


def _webhook_rate_exceeded(remote_ip: str) -> bool:
    window = int(now().timestamp()) // 60
    key = f"zenopay-webhook-rate:{remote_ip}:{window}"
    cache.add(key, 0, timeout=120)
    return cache.incr(key) > settings.ZENOPAY_WEBHOOK_MAX_PER_MIN


def _key_status(headers: dict) -> str:
    presented = next((v for k, v in headers.items() if k.lower() == "x-api-key"), None)
    if presented is None:
        return "absent"
    expected = settings.ZENOPAY_API_KEY or ""
    ok = bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())
    return "valid" if ok else "invalid"


def _refusal(body: bytes, headers: dict, remote_ip, key_status: str, status: int,
             reason: str) -> WebhookResult:
    _notification_store(kind=PaymentNotification.Kind.WEBHOOK,
                        body=body[:BODY_CAP].decode("utf-8", "replace"),
                        headers=_header_snapshot(headers), remote_ip=remote_ip,
                        key_status=key_status, http_status=status, outcome=Outcome.REJECTED,
                        outcome_note=reason, decided_at=now())
    logger.warning("ZenoPay webhook rejected status=%s reason=%s ip=%s", status, reason,
                   remote_ip)
    return WebhookResult(status, reason)


def _parse_webhook(body: bytes) -> dict | None:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("order_id"), str) \
            or not payload["order_id"].strip():
        return None
    return payload


def _our_deposit(order_id: str) -> DepositRequest | None:
    try:
        pk = uuid.UUID(order_id)
    except ValueError:
        return None
    return DepositRequest.objects.filter(pk=pk, payment_provider=ZENOPAY).first()


def zenopay_webhook_receive(*, body: bytes, headers: dict, remote_ip: str | None,
                            token: str | None) -> WebhookResult:
    """Store the call, refuse what must be refused, and turn a hint into a check."""
    allowed_ips = settings.ZENOPAY_WEBHOOK_ALLOWED_IPS
    key_status = _key_status(headers)
    if len(body) > BODY_CAP:
        return _refusal(body, headers, remote_ip, key_status, 413, "body over 16 KB")
    if allowed_ips and remote_ip not in allowed_ips:
        return _refusal(body, headers, remote_ip, key_status, 403, "source IP not allowed")
    if remote_ip and _webhook_rate_exceeded(remote_ip):
        return _refusal(body, headers, remote_ip, key_status, 429, "too many calls")
    if key_status == "invalid":
        return _refusal(body, headers, remote_ip, key_status, 401, "wrong x-api-key")
    if key_status == "absent" and settings.ZENOPAY_WEBHOOK_REQUIRE_KEY:
        return _refusal(body, headers, remote_ip, key_status, 401, "missing x-api-key")
    payload = _parse_webhook(body)
    if payload is None:
        return _refusal(body, headers, remote_ip, key_status, 400, "malformed body")
    order_id = payload["order_id"].strip()
    authenticated = bool(token) and hmac.compare_digest(str(token), webhook_token(order_id))
    deposit = _our_deposit(order_id)
    notification = _notification_store(
        kind=PaymentNotification.Kind.WEBHOOK, order_id=order_id[:100], deposit=deposit,
        payment_status=str(payload.get("payment_status", ""))[:32].upper(),
        body=body.decode("utf-8", "replace"), headers=_header_snapshot(headers),
        remote_ip=remote_ip, key_status=key_status, authenticated=authenticated,
        http_status=200)
    if deposit is None:
        notification_decide(notification_id=notification.pk, outcome=Outcome.IGNORED,
                            note="an order id we never created: stored, not queried")
        return WebhookResult(200, "unknown order")
    logger.info("ZenoPay webhook hint deposit=%s status=%s authenticated=%s", deposit.pk,
                notification.payment_status, authenticated)
    deposit_check_soon(deposit_id=deposit.pk)
    return WebhookResult(200, "received")


def deposit_check_soon(*, deposit_id) -> None:
    """A hint (webhook, or the customer's "check again"): poll now, in a task."""
    with transaction.atomic():
        DepositRequest.objects.filter(pk=deposit_id, status__in=(S.SUBMITTED, S.CANCELLED)) \
            .update(next_poll_at=now())
        task_enqueue_on_commit("deposits.tasks.check_deposit", str(deposit_id))

