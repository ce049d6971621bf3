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
import ipaddress
import json
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import (
    Case,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Concat

from core.clock import now
from core.http import client_throttle_key
from core.services import alert_raise, alert_resolve, task_enqueue_on_commit
from core.text import (
    text_free_storable,
    text_identifier,
    text_identifier_fits,
    text_json_loads,
    text_raw_storable,
)
from deposits.exceptions import TransitionRefused
from deposits.models import (
    DepositRequest,
    LimitEvent,
    OrphanPayment,
    PaymentNotification,
    WebhookRefusalCount,
)
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
ADVANCED = (
    S.MINT_PENDING,
    S.MINT_PROCESSING,
    S.MINTED,
    S.MINT_FAILED,
    S.MINT_REQUIRES_SAFE,
    S.REFUNDED,
)

# Columns outside values land in. Identifiers that do not fit are never clipped (DESIGN §14
# invariant 13): clipping could merge two payments or change the digits phones are compared on.
ORDER_ID_MAX = PaymentNotification._meta.get_field("order_id").max_length
PAYMENT_STATUS_MAX = PaymentNotification._meta.get_field("payment_status").max_length
REFERENCE_MAX = DepositRequest._meta.get_field("psp_reference").max_length
PHONE_MAX = OrphanPayment._meta.get_field("phone").max_length
CHANNEL_MAX = DepositRequest._meta.get_field("psp_channel").max_length
AMOUNT_MAX_TZS = 2**63 - 1  # BigIntegerField
# An accepted body is at most BODY_CAP bytes; escaped (\xNN) it is at most four times longer.
STORED_BODY_MAX = 4 * BODY_CAP
UNREADABLE = "unreadable reference"
# Anonymous calls refused for rate or size: only this many per client, minute and reason are
# stored as PaymentNotification samples; the rest only raise a WebhookRefusalCount.
REFUSAL_SAMPLES_PER_MINUTE = 5
# A webhook whose check still answers PENDING: ZenoPay said something happened, so the next
# check comes within a minute (the poll runs every 30 s), not at the next backoff step.
WEBHOOK_RECHECK_AFTER = dt.timedelta(seconds=30)
# ZenoPay drift: this many answers in a row, across deposits, that cannot be read (or creates
# whose outcome is unknown), over at least DRIFT_ALERT_LASTING, open the alert; the next
# readable answer resolves it. One blip never alerts; a wrong host, path, key or answer shape
# alerts within minutes instead of leaving every deposit "outcome unknown" for 72 h.
DRIFT_ALERT = "zenopay answers unreadable"
DRIFT_ALERT_AFTER = 3
DRIFT_ALERT_LASTING = dt.timedelta(minutes=2)
DRIFT_FORGET_AFTER = dt.timedelta(hours=6)  # a streak with no answer at all for this long


# --- The webhook token ------------------------------------------------------------------------


def webhook_token(order_id: str) -> str:
    """32 hex characters: HMAC of the order id with SECRET_KEY, carried in webhook_url."""
    return hmac.new(
        settings.SECRET_KEY.encode(),
        str(order_id).encode("utf-8", "backslashreplace"),
        hashlib.sha256,
    ).hexdigest()[:32]


def webhook_token_valid(token: str | None, order_id: str) -> bool:
    """Constant-time, on bytes: ``hmac.compare_digest`` refuses a str holding non-ASCII."""
    if not token or len(token) > 64:
        return False
    presented = str(token).encode("utf-8", "backslashreplace")
    return hmac.compare_digest(presented, webhook_token(order_id).encode())


def webhook_url_for(deposit_id) -> str:
    return f"{settings.APP_URL}/api/webhooks/zenopay?t={webhook_token(str(deposit_id))}"


# --- Initiation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Initiated:
    outcome: str  # requested, refused, uncertain or skipped
    answer: str  # the accepted create's JSON, else the refusal's or the failure's sentence


def payment_initiate(*, deposit_id) -> str:
    """Ask ZenoPay to push the USSD prompt, at most once per deposit.

    ``initiation`` moves pending → requested and commits before the HTTP call, so a
    redelivered task finds ``requested`` and leaves the deposit to polling (a create that
    never left is re-sent once, on evidence: ``payment_initiate_resend``)."""
    return payment_initiate_answer(deposit_id=deposit_id).outcome


def payment_initiate_answer(*, deposit_id) -> Initiated:
    """``payment_initiate``, with ZenoPay's answer (``manage.py zenopay_smoke`` prints it)."""
    with transaction.atomic():
        at = now()
        claimed = DepositRequest.objects.filter(
            pk=deposit_id,
            payment_provider=ZENOPAY,
            status=S.SUBMITTED,
            initiation=Initiation.PENDING,
            hold_reason="",
        ).update(initiation=Initiation.REQUESTED, initiation_requested_at=at, updated_at=at)
    if claimed != 1:
        return Initiated("skipped", "")
    return _create_send(deposit_id, resent_at=None)


def _create_send(deposit_id, *, resent_at: dt.datetime | None) -> Initiated:
    """Send the create whose claim is committed and record ZenoPay's answer.

    ``resent_at`` names the send: None for the first, the re-send's stamp for the re-send.
    Each send records only its own answer, so a first create that was only slow (a frozen
    worker waking after the re-send) can never cancel or mark a deposit its re-send served."""
    mine = (
        Q(initiation_resent_at__isnull=True)
        if resent_at is None
        else Q(initiation_resent_at=resent_at)
    )
    deposit = DepositRequest.objects.select_related("user").get(pk=deposit_id)
    # The last write before the create leaves, a compare-and-set: a create claimed but never
    # stamped provably never left (only those are ever re-sent), and a send whose claim was
    # overtaken by a re-send (a worker frozen in between) finds the stamp taken and sends
    # nothing.
    stamped = DepositRequest.objects.filter(
        mine, pk=deposit_id, initiation=Initiation.REQUESTED, initiation_sending_at__isnull=True
    ).update(initiation_sending_at=now())
    if stamped != 1:
        return Initiated("skipped", "")
    try:
        accepted = zenopay_create(
            order_id=str(deposit.pk),
            buyer_email=deposit.user.email,
            buyer_name=deposit.user.full_name or deposit.user.email,
            buyer_phone=phone_local_form(deposit.buyer_phone),
            amount_tzs=deposit.amount_tzs,
            webhook_url=webhook_url_for(deposit.pk),
        )
    except ZenoPayRefused as exc:
        # A refusal is a readable answer, except 401/403: a wrong or revoked key refuses
        # every create, and that is drift too.
        _drift_note(
            call="create",
            why=f"HTTP {exc.http_status}: {exc}" if exc.http_status in (401, 403) else "",
        )
        _initiation_refused(deposit_id, str(exc), mine=mine, resent=resent_at is not None)
        return Initiated("refused", str(exc))
    except ZenoPayUnavailable as exc:
        # The customer may have been prompted and may pay: keep polling, never cancel.
        DepositRequest.objects.filter(mine, pk=deposit_id, initiation=Initiation.REQUESTED).update(
            initiation=Initiation.UNCERTAIN,
            initiation_error=str(exc)[:500],
            next_poll_at=now() + dt.timedelta(seconds=POLL_BACKOFF_S[0]),
            updated_at=now(),
        )
        logger.warning("ZenoPay create outcome unknown deposit=%s: %s", deposit_id, exc)
        _drift_note(call="create", why=f"outcome unknown: {exc}")
        return Initiated("uncertain", str(exc))
    # Recorded at once: a requested deposit with this stamp is one ZenoPay took.
    DepositRequest.objects.filter(mine, pk=deposit_id).update(initiation_answered_at=now())
    _drift_note(call="create", why="")
    logger.info("ZenoPay payment requested deposit=%s", deposit_id)
    return Initiated("requested", json.dumps(accepted.raw, ensure_ascii=False))


# --- A create that never left ---------------------------------------------------------------
#
# ``initiation`` is committed ``requested`` before the create is sent (DESIGN §6), so a
# worker killed between that commit and the HTTP call leaves a deposit ZenoPay never heard
# of: the customer was never prompted and nothing but the 72 h expiry would end it. The last
# write before the call stamps ``initiation_sending_at``; a requested deposit without that
# stamp provably never reached ZenoPay, and only such a create is re-sent — never blindly:
# also no answer was recorded, ZenoPay's own order-status plainly says "not found" (no data)
# at least ZENOPAY_CREATE_RESEND_AFTER_S after the request (never sooner than twice
# ZENOPAY_TIMEOUT, so a claim still on its way to its stamp is left alone), nothing ZenoPay
# said since shows it knows the order, and no webhook ever came for it. A re-send killed
# before its own stamp is provably unsent too, and may be re-sent again after the same wait.
#
# A stamped create without an answer (killed during the call) is never re-sent, like an
# ``uncertain`` one (sent, timed out): ZenoPay may have the order and may have prompted the
# customer, who may pay; polling finds the payment, the 72 h expiry ends the rest.

RESEND_FIRST_POLL_AFTER = dt.timedelta(seconds=POLL_BACKOFF_S[0])
# Order-status answers that say nothing about the order: no answer at all (no HTTP status),
# ZenoPay's "too slow", "too many" and server errors. Any other answer that is not a plain
# "not found" means ZenoPay may know the order: no re-send.
SILENT_STATUS = (
    Q(http_status__isnull=True) | Q(http_status__in=(408, 429)) | Q(http_status__gte=500)
)


def _resend_after() -> dt.timedelta:
    return dt.timedelta(
        seconds=max(settings.ZENOPAY_CREATE_RESEND_AFTER_S, 2 * settings.ZENOPAY_TIMEOUT)
    )


def _creates_stranded():
    """ZenoPay deposits whose create never left (claimed, never stamped as sending) and that
    ZenoPay does not know: the conditions of the re-send, all in one query so its
    compare-and-set checks them again."""
    wait = _resend_after()
    notes = PaymentNotification.objects.filter(deposit_id=OuterRef("pk"))
    answers_since_request = notes.filter(
        kind=PaymentNotification.Kind.ORDER_STATUS,
        received_at__gte=OuterRef("initiation_requested_at"),
    )
    waited = ExpressionWrapper(
        OuterRef("initiation_requested_at") + wait, output_field=DateTimeField()
    )
    return DepositRequest.objects.filter(
        Exists(answers_since_request.filter(no_data=True, received_at__gte=waited)),
        ~Exists(answers_since_request.filter(no_data=False).exclude(SILENT_STATUS)),
        ~Exists(notes.filter(kind=PaymentNotification.Kind.WEBHOOK)),
        Q(initiation_resent_at__isnull=True) | Q(initiation_resent_at__lt=now() - wait),
        payment_provider=ZENOPAY,
        status=S.SUBMITTED,
        hold_reason="",
        initiation=Initiation.REQUESTED,
        initiation_requested_at__lt=now() - wait,
        initiation_answered_at__isnull=True,
        initiation_sending_at__isnull=True,
    )


def payment_initiate_resend(*, deposit_id) -> str:
    """Re-send the create of a deposit whose create never left.

    The compare-and-set on ``initiation_resent_at`` re-checks every condition, so of two
    runs at once one claims, and the sending stamp lets at most one send. The re-send's
    answer is handled as the first create's: accepted (answer recorded, polled from now),
    unavailable (``uncertain``, polled), refused (``refused``, cancelled, still checked
    daily). Returns that outcome, or "skipped"."""
    at = now()
    with transaction.atomic():
        claimed = (
            _creates_stranded()
            .filter(pk=deposit_id)
            .update(
                initiation_resent_at=at,
                # Polled as a fresh request: the backoff had grown while nothing was asked.
                poll_attempts=0,
                next_poll_at=at + RESEND_FIRST_POLL_AFTER,
                updated_at=at,
            )
        )
    if claimed != 1:
        return "skipped"
    logger.warning(
        "ZenoPay create re-sent deposit=%s: the first never left and ZenoPay does not know "
        "the order",
        deposit_id,
    )
    return _create_send(deposit_id, resent_at=at).outcome


def _drift_note(*, call: str, why: str) -> None:
    """Count ZenoPay answers that cannot be read, in a row and across deposits (``why`` says
    why; "" for a readable answer, which ends the streak and resolves the alert).

    The streak lives in the shared cache (Redis), not in stored rows: every process adds to
    one atomic counter, and nothing has to be classified again from stored notes. Losing it
    (a cache flush) only delays the alert by a few answers; the alert itself is a row. Never
    raises: the check or create it follows has already done its work."""
    count_key, since_key = f"zenopay-drift:{call}:count", f"zenopay-drift:{call}:since"
    try:
        if not why:
            cache.delete_many([count_key, since_key])
            alert_resolve(kind=DRIFT_ALERT, key=call)
            return
        forget = int(DRIFT_FORGET_AFTER.total_seconds())
        at = now().timestamp()
        cache.add(since_key, at, timeout=forget)
        cache.add(count_key, 0, timeout=forget)
        count = cache.incr(count_key)
        cache.touch(count_key, timeout=forget)
        cache.touch(since_key, timeout=forget)
        since = cache.get(since_key, at)
        if count >= DRIFT_ALERT_AFTER and at - since >= DRIFT_ALERT_LASTING.total_seconds():
            alert_raise(
                kind=DRIFT_ALERT,
                key=call,
                detail=(
                    f"{count} ZenoPay {call} answers in a row could not be read since "
                    f"{dt.datetime.fromtimestamp(since, tz=dt.UTC):%Y-%m-%d %H:%M} UTC; the "
                    f"last: {text_free_storable(why, max_length=300)}. Check "
                    f"ZENOPAY_BASE_URL, the paths and ZENOPAY_API_KEY "
                    f"(manage.py zenopay_smoke --status-only ORDER_ID shows the raw answer)."
                ),
            )
    except Exception:
        logger.exception("ZenoPay drift bookkeeping failed (%s); the check went on", call)


@transaction.atomic
def _initiation_refused(deposit_id, message: str, *, mine: Q, resent: bool) -> None:
    refused = DepositRequest.objects.filter(
        mine, pk=deposit_id, initiation=Initiation.REQUESTED
    ).update(
        initiation=Initiation.REFUSED,
        initiation_error=message[:500],
        initiation_answered_at=now(),
        updated_at=now(),
    )
    if not refused:
        return  # another send's answer decides this deposit
    try:
        deposit_cancel(
            deposit_id=deposit_id,
            source="system",
            reason=f"The payment request was refused: {message}",
            # A refused first create pushed nothing. A refused re-send may follow a first
            # create ZenoPay had after all: checked daily like any cancelled deposit.
            next_poll_at=now() + CANCELLED_CHECK_EVERY if resent else None,
        )
    except TransitionRefused:
        pass  # already moved on (e.g. a payment confirmed meanwhile): nothing to cancel


def payments_initiate_due(*, limit: int = 100) -> int:
    """Re-drive creates whose initiation is still pending after a minute (lost messages),
    then re-send, once, the creates that never reached ZenoPay (``payment_initiate_resend``).

    Each deposit on its own: one that fails is logged and left for the next run (still
    pending, or requested and then polled), and the others go ahead."""
    due = list(
        DepositRequest.objects.filter(
            payment_provider=ZENOPAY,
            status=S.SUBMITTED,
            initiation=Initiation.PENDING,
            hold_reason="",
            created_at__lt=now() - INITIATION_REDRIVE_AFTER,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    requested = 0
    for pk in due:
        try:
            requested += payment_initiate(deposit_id=pk) == "requested"
        except Exception:
            logger.exception("ZenoPay initiation failed deposit=%s; the others go on", pk)
    stranded = list(
        _creates_stranded().order_by("initiation_requested_at").values_list("pk", flat=True)[:limit]
    )
    for pk in stranded:
        try:
            requested += payment_initiate_resend(deposit_id=pk) == "requested"
        except Exception:
            logger.exception("ZenoPay create re-send failed deposit=%s; the others go on", pk)
    return requested


# --- Storing what ZenoPay said ---------------------------------------------------------------


def _notification_store(**fields) -> PaymentNotification:
    """Stored in its own committed transaction: survives whatever happens next."""
    with transaction.atomic():
        return PaymentNotification.objects.create(**fields)


def _note_appended(note: str):
    """``outcome_note`` plus ``note``: a note written when the call was stored (a field that
    did not fit its column) survives the decision."""
    note = text_free_storable(note, max_length=1000)
    return Case(
        When(outcome_note="", then=Value(note)),
        default=Concat(F("outcome_note"), Value(f"; {note}")),
        output_field=TextField(),
    )


def notification_decide(*, notification_id, outcome: str, note: str = "") -> bool:
    """Set the outcome once, by compare-and-set."""
    return bool(
        PaymentNotification.objects.filter(pk=notification_id, outcome=Outcome.PENDING).update(
            outcome=outcome, outcome_note=_note_appended(note), decided_at=now()
        )
    )


# --- Applying an order-status answer (DESIGN §5.1) -------------------------------------------


@dataclass(frozen=True)
class Applied:
    outcome: str
    note: str


def _reference_of(status: OrderStatus) -> str:
    return (status.transid or status.reference or "").strip()


def _channel_of(status: OrderStatus) -> str:
    """The channel is free text: cleaned and clipped to its column."""
    return text_free_storable(status.channel, max_length=CHANNEL_MAX)


def _unreadable(status: OrderStatus) -> str:
    """Why a COMPLETED answer's payment cannot be stored and compared as it is; "" when it
    can. Nothing is clipped to make it fit."""
    if status.unreadable:
        return status.unreadable
    for name, value, max_length in (
        ("reference", _reference_of(status), REFERENCE_MAX),
        ("msisdn", status.msisdn, PHONE_MAX),
    ):
        if value and not text_identifier_fits(value, max_length=max_length):
            return (
                f"{name} of {len(value)} characters does not fit its column "
                f"({max_length}) or holds control characters"
            )
    if status.amount_tzs is not None and not 0 < status.amount_tzs <= AMOUNT_MAX_TZS:
        return f"amount {status.amount_tzs} is not a payment amount"
    return ""


def _orphan_record(*, deposit: DepositRequest, status: OrderStatus, reason: str) -> None:
    OrphanPayment.objects.get_or_create(
        provider=ZENOPAY,
        psp_reference=_reference_of(status),
        defaults={
            "amount_tzs": status.amount_tzs,
            "phone": status.msisdn or "",
            "channel": _channel_of(status),
            "source_deposit": deposit,
            "reason": reason,
        },
    )


def _payment_details(status: OrderStatus) -> dict:
    return {
        "paid_amount_tzs": status.amount_tzs,
        "psp_reference": _reference_of(status),
        "msisdn": status.msisdn,
        "channel": _channel_of(status),
    }


def _unreadable_held(
    deposit: DepositRequest, status: OrderStatus, source: str, why: str, *, actor=None
) -> Applied:
    """A paid deposit whose payment we cannot read is held for a person, with an alert; the
    raw answer stays in its PaymentNotification. On a deposit already past payment it is a
    second payment that no OrphanPayment row can hold: the alert is its record, and the
    deposit, rightly paid, goes on."""
    detail = (
        f"ZenoPay reported a completed payment for deposit {deposit.pk} that cannot be "
        f"read: {why}. The raw answer is kept in its payment notification."
    )
    # Only storable previews go into JSON (PostgreSQL's jsonb refuses NUL).
    details = {
        "unreadable": why,
        "channel": _channel_of(status),
        "reference_preview": text_raw_storable(_reference_of(status), max_chars=120),
        "msisdn_preview": text_raw_storable(status.msisdn or "", max_chars=40),
        "paid_amount_tzs": status.amount_tzs,
    }
    reference = _reference_of(status)
    if reference and text_identifier_fits(reference, max_length=REFERENCE_MAX):
        # Readable on its own (e.g. only the msisdn is overlong): kept, so a refund or a
        # release can remember this payment and it never becomes new money later.
        details["psp_reference"] = reference
    alert_raise(
        kind="unreadable payment", key=str(deposit.pk), detail=detail, deposit_id=deposit.pk
    )
    if deposit.status in ADVANCED or deposit.status not in HOLDABLE:
        return Applied(
            Outcome.IGNORED,
            f"unreadable second payment on a {deposit.status} deposit, alert opened: {why}",
        )
    if deposit.hold_reason:
        return Applied(Outcome.HELD, f"deposit on hold ({deposit.hold_reason}); {why}")
    deposit_hold_set(
        deposit_id=deposit.pk, reason=UNREADABLE, source=source, actor=actor, details=details
    )
    return Applied(Outcome.HELD, f"{UNREADABLE}: {why}")


def _mismatch(deposit: DepositRequest, status: OrderStatus) -> str:
    if status.amount_tzs != deposit.amount_tzs:
        return (
            f"amount mismatch: paid {status.amount_tzs} TZS for a deposit of "
            f"{deposit.amount_tzs} TZS"
        )
    if status.msisdn and phone_last9(status.msisdn) != phone_last9(deposit.buyer_phone):
        return "phone mismatch: paid from another number"
    return ""


def _reference_conflict(
    deposit: DepositRequest, status: OrderStatus, source: str, *, actor=None
) -> Applied:
    """One PSP reference confirms at most one deposit: hold and alert (DESIGN §5 Holds)."""
    ref = _reference_of(status)
    other = (
        DepositRequest.objects.filter(payment_provider=ZENOPAY, psp_reference=ref)
        .exclude(pk=deposit.pk)
        .first()
    )
    reason = f"PSP reference {ref} already confirmed deposit {other.pk if other else '?'}"
    deposit_hold_set(
        deposit_id=deposit.pk,
        reason="conflicting PSP reference",
        source=source,
        actor=actor,
        details={**_payment_details(status), "other_deposit": str(other and other.pk)},
    )
    # Both are held, unless the other one is already being minted or minted.
    if other is not None and other.status in HOLDABLE and not other.hold_reason:
        try:
            deposit_hold_set(
                deposit_id=other.pk,
                reason="conflicting PSP reference",
                source=source,
                actor=actor,
                details={"psp_reference": ref, "other_deposit": str(deposit.pk)},
            )
        except TransitionRefused:
            pass  # it moved on (claimed) a moment ago: only this one is held
    alert_raise(kind="psp reference conflict", key=ref, detail=reason, deposit_id=deposit.pk)
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
            LimitEvent.objects.create(
                user_id=deposit.user_id,
                kind=LimitEvent.Kind.RECOVERY,
                subject=str(deposit.user_id),
                requested_tzs=deposit.amount_tzs,
                limit_tzs=limit,
                used_tzs=used - deposit.amount_tzs,
                deposit=deposit,
            )
            return


def _confirm(deposit: DepositRequest, status: OrderStatus, source: str, *, actor=None) -> Applied:
    ref = _reference_of(status)
    channel = _channel_of(status)
    metadata = {"psp_reference": ref, "channel": channel, "msisdn": status.msisdn}
    try:
        with transaction.atomic():
            if deposit.status == S.CANCELLED:
                target = deposit_recover(
                    deposit_id=deposit.pk,
                    amount_tzs=deposit.amount_tzs,
                    psp_reference=ref,
                    psp_channel=channel,
                    source=source,
                    actor=actor,
                    metadata=metadata,
                )
                _recovery_limit_events(DepositRequest.objects.get(pk=deposit.pk))
            else:
                target = deposit_payment_confirm(
                    deposit_id=deposit.pk,
                    amount_tzs=deposit.amount_tzs,
                    psp_reference=ref,
                    psp_channel=channel,
                    source=source,
                    actor=actor,
                    metadata=metadata,
                )
    except IntegrityError:  # the unique reference: another deposit took it concurrently
        return _reference_conflict(deposit, status, source, actor=actor)
    if source == "poll":
        logger.info("polled ZenoPay, found completed payment deposit=%s ref=%s", deposit.pk, ref)
    else:  # a hint (webhook, the customer's "check again") led to the check: say which
        logger.info(
            "checked ZenoPay (%s), found completed payment deposit=%s ref=%s",
            source,
            deposit.pk,
            ref,
        )
    return Applied(Outcome.APPLIED, f"payment confirmed: {target}")


def _apply_completed(
    deposit: DepositRequest, status: OrderStatus, source: str, *, actor=None
) -> Applied:
    ref = _reference_of(status)
    # A payment handled before is recognised by its reference even when another field of
    # this answer is unreadable; a reference that does not fit is never looked up (NUL).
    known_ref = ref if text_identifier_fits(ref, max_length=REFERENCE_MAX) else ""
    if known_ref and deposit.psp_reference == known_ref:
        return Applied(Outcome.DUPLICATE, "this payment already confirmed this deposit")
    if (
        known_ref
        and OrphanPayment.objects.filter(provider=ZENOPAY, psp_reference=known_ref).exists()
    ):
        return Applied(Outcome.DUPLICATE, f"payment {ref} is already an orphan payment")
    unreadable = _unreadable(status)
    if unreadable:
        return _unreadable_held(deposit, status, source, unreadable, actor=actor)
    if not ref or status.amount_tzs is None:
        if now() - deposit.created_at >= EXPIRE_AFTER:
            # Still without them when the deposit would expire: a person must look, never a
            # cancellation of money ZenoPay says arrived.
            return _unreadable_held(
                deposit,
                status,
                source,
                "COMPLETED without a reference or an amount after 72 hours",
                actor=actor,
            )
        # Not yet: ZenoPay sometimes completes before it knows the transaction id.
        return Applied(Outcome.IGNORED, "COMPLETED without a reference or an amount")
    if OrphanPayment.objects.filter(provider=ZENOPAY, psp_reference=ref).exists():
        # Already an orphan (moved to a new deposit, attached, dismissed or refunded):
        # one payment is handled once.
        return Applied(Outcome.DUPLICATE, f"payment {ref} is already an orphan payment")
    if deposit.status in ADVANCED:
        _orphan_record(deposit=deposit, status=status, reason="second payment")
        return Applied(Outcome.ORPHAN, f"second payment {ref} on a {deposit.status} deposit")
    if deposit.hold_reason:
        return Applied(Outcome.HELD, f"deposit on hold ({deposit.hold_reason})")
    if (
        DepositRequest.objects.filter(payment_provider=ZENOPAY, psp_reference=ref)
        .exclude(pk=deposit.pk)
        .exists()
    ):
        return _reference_conflict(deposit, status, source, actor=actor)
    mismatch = _mismatch(deposit, status)
    if mismatch:
        deposit_hold_set(
            deposit_id=deposit.pk,
            reason=mismatch,
            source=source,
            actor=actor,
            details=_payment_details(status),
        )
        return Applied(Outcome.HELD, mismatch)
    if deposit.status == S.REJECTED:
        deposit_hold_set(
            deposit_id=deposit.pk,
            reason="payment received on a rejected deposit",
            source=source,
            actor=actor,
            details=_payment_details(status),
        )
        return Applied(Outcome.HELD, "payment on a rejected deposit")
    return _confirm(deposit, status, source, actor=actor)


def _apply_refused(
    deposit: DepositRequest, status: OrderStatus, source: str, *, actor=None
) -> Applied:
    if deposit.status != S.SUBMITTED or deposit.hold_reason:
        return Applied(Outcome.IGNORED, f"{status.payment_status} for a {deposit.status} deposit")
    reason = (
        "The payment was declined or cancelled on the phone."
        if status.payment_status == "FAILED"
        else "The payment was cancelled."
    )
    deposit_cancel(
        deposit_id=deposit.pk,
        reason=reason,
        source=source,
        actor=actor,
        next_poll_at=now() + CANCELLED_CHECK_EVERY,
    )
    return Applied(Outcome.APPLIED, f"cancelled: ZenoPay {status.payment_status}")


@transaction.atomic
def payment_status_apply(*, deposit_id, status: OrderStatus, source: str, actor=None) -> Applied:
    deposit = DepositRequest.objects.select_for_update().get(pk=deposit_id)
    if not status.known:
        return Applied(Outcome.IGNORED, f"unknown: {status.reason}")
    if status.payment_status == "COMPLETED":
        return _apply_completed(deposit, status, source, actor=actor)
    if status.payment_status in ("FAILED", "CANCELLED"):
        return _apply_refused(deposit, status, source, actor=actor)
    return Applied(Outcome.IGNORED, f"payment {status.payment_status or 'unknown'}")


def _reschedule(deposit_id, *, within: dt.timedelta | None = None) -> None:
    """The next check of a deposit: the backoff step, or sooner (``within``) when a webhook
    said something happened but the check still answered PENDING."""
    deposit = (
        DepositRequest.objects.filter(pk=deposit_id)
        .values("status", "poll_attempts", "cancelled_at")
        .first()
    )
    if deposit is None:
        return
    if deposit["status"] == S.SUBMITTED:
        attempts = deposit["poll_attempts"]
        wait = (
            POLL_BACKOFF_S[attempts]
            if attempts < len(POLL_BACKOFF_S)
            else POLL_EVERY_S_AFTER_BACKOFF
        )
        next_in = dt.timedelta(seconds=wait)
        if within is not None:
            next_in = min(next_in, within)
        DepositRequest.objects.filter(pk=deposit_id, status=S.SUBMITTED).update(
            poll_attempts=attempts + 1, next_poll_at=now() + next_in
        )
    elif deposit["status"] == S.CANCELLED:
        cancelled_at = deposit["cancelled_at"] or now()
        keep_checking = now() - cancelled_at < CANCELLED_CHECKS_FOR
        DepositRequest.objects.filter(pk=deposit_id, status=S.CANCELLED).update(
            next_poll_at=now() + CANCELLED_CHECK_EVERY if keep_checking else None
        )


def _check_claim(deposit_id) -> bool:
    """The one debounce of every check (poll, webhook hint, the customer's "check again" on
    the page or the API): ZenoPay is asked about a deposit at most once per CHECK_DEBOUNCE.
    A compare-and-set on ``last_checked_at``: of two askers at once, one wins."""
    at = now()
    return bool(
        DepositRequest.objects.filter(pk=deposit_id, payment_provider=ZENOPAY)
        .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=at - CHECK_DEBOUNCE))
        .update(last_checked_at=at)
    )


def order_status_notification_store(*, deposit_id, status) -> PaymentNotification:
    """One order-status answer stored as asked (``pending``): the payment status only when it
    fits its column (else a note; the raw body is the faithful record), the body escaped and
    bounded. Every order-status query stores its answer this way."""
    payment_status, status_note = _field_storable(
        "payment_status", status.payment_status or "", PAYMENT_STATUS_MAX
    )
    return _notification_store(
        kind=PaymentNotification.Kind.ORDER_STATUS,
        order_id=str(deposit_id),
        deposit_id=deposit_id,
        payment_status=payment_status,
        body=text_raw_storable(status.raw_body, max_chars=STORED_BODY_MAX),
        http_status=status.http_status,
        no_data=status.no_data,
        outcome_note=status_note,
    )


def deposit_check(*, deposit_id, source: str, actor_id=None, claimed: bool = False) -> str:
    """Ask ZenoPay about one deposit, at most once per 10 s per deposit, and apply it; the
    transitions it causes are recorded with ``source`` and the actor (the customer who asked).

    ``claimed``: the asker already won the debounce (``deposit_check_again``). Returns the
    outcome ("debounced" when another check ran within 10 s)."""
    if not claimed and not _check_claim(deposit_id):
        return "debounced"
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    status = zenopay_order_status(order_id=str(deposit_id))
    _drift_note(call="order-status", why=status.reason if status.drift else "")
    notification = order_status_notification_store(deposit_id=deposit_id, status=status)
    try:
        applied = payment_status_apply(
            deposit_id=deposit_id, status=status, source=source, actor=actor
        )
    except Exception as exc:
        # The answer stays stored and decided; the caller logs, reschedules and goes on.
        notification_decide(
            notification_id=notification.pk,
            outcome=Outcome.IGNORED,
            note=f"could not be applied ({type(exc).__name__}); the deposit is checked again later",
        )
        raise
    notification_decide(notification_id=notification.pk, outcome=applied.outcome, note=applied.note)
    _webhook_hints_decide(deposit_id, applied, before=notification.received_at)
    still_pending = status.known and status.payment_status == "PENDING"
    _reschedule(
        deposit_id, within=WEBHOOK_RECHECK_AFTER if source == "webhook" and still_pending else None
    )
    return applied.outcome


def _webhook_hints_decide(deposit_id, applied: Applied, *, before) -> None:
    """The webhooks that asked for this check learn what it found."""
    PaymentNotification.objects.filter(
        deposit_id=deposit_id,
        kind=PaymentNotification.Kind.WEBHOOK,
        outcome=Outcome.PENDING,
        received_at__lte=before,
    ).update(
        outcome=applied.outcome,
        decided_at=now(),
        outcome_note=_note_appended(f"order-status check: {applied.note}"),
    )


def _reschedule_after_error(deposit_id) -> None:
    """A deposit whose check raised: next time later (the usual backoff), never first in
    every run; a failure here too is only logged, so the run goes on."""
    try:
        _reschedule(deposit_id)
    except Exception:
        logger.exception("could not reschedule deposit=%s after an error", deposit_id)


# --- Polling and expiry ------------------------------------------------------------------------


def _due_for_poll(limit: int) -> list[uuid.UUID]:
    at = now()
    submitted = (
        DepositRequest.objects.filter(
            payment_provider=ZENOPAY,
            status=S.SUBMITTED,
            hold_reason="",
            next_poll_at__lte=at,
            initiation__in=[Initiation.REQUESTED, Initiation.UNCERTAIN],
        )
        .order_by("-created_at")
        .values_list("pk", flat=True)[:limit]
    )
    cancelled = (
        DepositRequest.objects.filter(
            payment_provider=ZENOPAY,
            status=S.CANCELLED,
            hold_reason="",
            next_poll_at__lte=at,
            cancelled_at__gte=at - CANCELLED_CHECKS_FOR,
        )
        .order_by("-created_at")
        .values_list("pk", flat=True)[:limit]
    )
    return list(submitted) + list(cancelled)


def payments_poll(*, limit: int = 50, deposit_id=None) -> dict[str, int]:
    """One poll run: due deposits newest first, in a bounded batch, so a backlog of
    abandoned attempts never starves fresh ones."""
    ids = [deposit_id] if deposit_id else _due_for_poll(limit)
    counts: dict[str, int] = {}
    for pk in ids:
        # One deposit's failure never stops the run (DESIGN §14 invariant 13).
        try:
            outcome = deposit_check(deposit_id=pk, source="poll")
        except Exception:
            logger.exception("ZenoPay poll failed deposit=%s; rescheduled, the run goes on", pk)
            _reschedule_after_error(pk)
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def deposits_expire_stale(*, limit: int = 200) -> int:
    """Cancel unpaid, not held, ZenoPay deposits after 72 h, after one last check."""
    stale = list(
        DepositRequest.objects.filter(
            payment_provider=ZENOPAY,
            status=S.SUBMITTED,
            hold_reason="",
            created_at__lt=now() - EXPIRE_AFTER,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for pk in stale:
        try:
            deposit_check(deposit_id=pk, source="system")
        except Exception:
            # Without its last check it may have been paid: not cancelled, tried next run.
            logger.exception(
                "ZenoPay last check before expiry failed deposit=%s; not "
                "cancelled, the run goes on",
                pk,
            )
            _reschedule_after_error(pk)
            continue
        try:
            deposit_cancel(
                deposit_id=pk,
                source="system",
                reason="No payment arrived within 72 hours.",
                next_poll_at=now() + CANCELLED_CHECK_EVERY,
            )
            expired += 1
        except TransitionRefused:
            continue  # paid, held or moved on during the last check
        except Exception:
            logger.exception("expiry failed deposit=%s; the run goes on", pk)
    return expired


# --- Webhook hints (DESIGN §6) ---------------------------------------------------------------


@dataclass(frozen=True)
class WebhookResult:
    http_status: int
    reason: str


@dataclass(frozen=True)
class _Call:
    """One webhook call as received, made storable."""

    body: bytes
    headers: dict
    remote_ip: str | None  # a valid IP address, or None
    key_status: str


def _storable_ip(address: str | None) -> str | None:
    """The address as the database's inet column takes it, or None ("unknown", garbage)."""
    try:
        return str(ipaddress.ip_address(str(address or "").strip()))
    except ValueError:
        return None


def _header_snapshot(headers: dict) -> dict:
    keep = ("content-type", "user-agent", "content-length", "x-forwarded-for")
    snapshot = {
        str(k): text_raw_storable(str(v), max_chars=200)
        for k, v in headers.items()
        if str(k).lower() in keep
    }
    if any(str(k).lower() == "x-api-key" for k in headers):
        snapshot["x-api-key"] = "[present]"  # never the value
    return snapshot


def _webhook_rate_exceeded(remote_ip: str | None) -> bool:
    window = int(now().timestamp()) // 60
    key = f"zenopay-webhook-rate:{client_throttle_key(remote_ip or 'unknown')}:{window}"
    cache.add(key, 0, timeout=120)
    return cache.incr(key) > settings.ZENOPAY_WEBHOOK_MAX_PER_MIN


def _key_status(headers: dict) -> str:
    presented = next((v for k, v in headers.items() if str(k).lower() == "x-api-key"), None)
    if presented is None:
        return "absent"
    expected = settings.ZENOPAY_API_KEY or ""
    # Bytes on both sides: compare_digest refuses a str holding non-ASCII characters.
    ok = bool(expected) and hmac.compare_digest(
        str(presented).encode("utf-8", "backslashreplace"), expected.encode()
    )
    return "valid" if ok else "invalid"


def _refusal(call: _Call, status: int, reason: str) -> WebhookResult:
    _notification_store(
        kind=PaymentNotification.Kind.WEBHOOK,
        body=text_raw_storable(call.body[:BODY_CAP], max_chars=STORED_BODY_MAX),
        headers=_header_snapshot(call.headers),
        remote_ip=call.remote_ip,
        key_status=call.key_status,
        http_status=status,
        outcome=Outcome.REJECTED,
        outcome_note=reason,
        decided_at=now(),
    )
    logger.warning(
        "ZenoPay webhook rejected status=%s reason=%s ip=%s", status, reason, call.remote_ip
    )
    return WebhookResult(status, reason)


def webhook_refusal_count_add(*, remote_ip: str, reason: str) -> int:
    """Add one to this client's refusals of this minute; returns the new count.

    The update (or the insert) locks the row until commit, so the count read back is this
    call's own, whatever runs concurrently; an insert that lost the race updates instead."""
    minute = now().replace(second=0, microsecond=0)
    rows = WebhookRefusalCount.objects.filter(remote_ip=remote_ip, minute=minute, reason=reason)
    with transaction.atomic():
        if not rows.update(count=F("count") + 1):
            try:
                with transaction.atomic():
                    WebhookRefusalCount.objects.create(
                        remote_ip=remote_ip, minute=minute, reason=reason, count=1
                    )
            except IntegrityError:
                rows.update(count=F("count") + 1)
        return rows.values_list("count", flat=True).get()


def _refusal_counted(call: _Call, status: int, reason: str, kind: str) -> WebhookResult:
    """An anonymous call refused for rate or size: counted, and stored only as one of the
    first few samples of its client's minute, so a flood cannot fill the database."""
    count = webhook_refusal_count_add(
        remote_ip=client_throttle_key(call.remote_ip) if call.remote_ip else "", reason=kind
    )
    if count <= REFUSAL_SAMPLES_PER_MINUTE:
        return _refusal(call, status, f"{reason} (sample {count} of this minute)")
    if count == REFUSAL_SAMPLES_PER_MINUTE + 1:
        logger.warning(
            "ZenoPay webhook rejected status=%s reason=%s ip=%s: further calls "
            "this minute are only counted",
            status,
            reason,
            call.remote_ip,
        )
    return WebhookResult(status, reason)


def _parse_webhook(body: bytes) -> dict | None:
    try:
        payload = text_json_loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("order_id"), str)
        or not payload["order_id"].strip()
    ):
        return None
    return payload


def _our_deposit(order_id: str) -> DepositRequest | None:
    try:
        pk = uuid.UUID(order_id)
    except ValueError:
        return None
    return DepositRequest.objects.filter(pk=pk, payment_provider=ZENOPAY).first()


def _field_storable(name: str, value: str, max_length: int) -> tuple[str, str]:
    """(value, "") when it fits its column; ("", a note) when not — never clipped: the
    raw body, stored whole, is the faithful record."""
    if text_identifier_fits(value, max_length=max_length):
        return value, ""
    return "", (
        f"{name} of {len(value)} characters not stored in its column ({max_length}); see the body"
    )


def zenopay_webhook_receive(
    *, body: bytes, headers: dict, remote_ip: str | None, token: str | None
) -> WebhookResult:
    """Store the call, refuse what must be refused, and turn a hint into a check.

    ``remote_ip`` is the real client (core.http.client_address). Calls with a valid URL token
    or from an allowlisted address are never throttled; anonymous calls refused for rate or
    size are counted and only sampled."""
    call = _Call(
        body=body,
        headers=headers,
        remote_ip=_storable_ip(remote_ip),
        key_status=_key_status(headers),
    )
    allowed_ips = {_storable_ip(ip) or ip for ip in settings.ZENOPAY_WEBHOOK_ALLOWED_IPS}
    allowlisted = bool(allowed_ips) and call.remote_ip in allowed_ips
    if len(body) > BODY_CAP:
        if allowlisted:
            return _refusal(call, 413, "body over 16 KB")
        return _refusal_counted(call, 413, "body over 16 KB", WebhookRefusalCount.Reason.SIZE)
    payload = _parse_webhook(body)
    order_id = payload["order_id"].strip() if payload else ""
    stored_order_id, order_note = _field_storable("order_id", order_id, ORDER_ID_MAX)
    authenticated = bool(stored_order_id) and webhook_token_valid(token, stored_order_id)
    if not (authenticated or allowlisted) and _webhook_rate_exceeded(call.remote_ip):
        return _refusal_counted(call, 429, "too many calls", WebhookRefusalCount.Reason.RATE)
    if allowed_ips and not allowlisted:
        return _refusal(call, 403, "source IP not allowed")
    if call.key_status == "invalid":
        return _refusal(call, 401, "wrong x-api-key")
    if call.key_status == "absent" and settings.ZENOPAY_WEBHOOK_REQUIRE_KEY:
        return _refusal(call, 401, "missing x-api-key")
    if payload is None:
        return _refusal(call, 400, "malformed body")
    payment_status, status_note = _field_storable(
        "payment_status", text_identifier(payload.get("payment_status")).upper(), PAYMENT_STATUS_MAX
    )
    deposit = _our_deposit(stored_order_id) if stored_order_id else None
    notification = _notification_store(
        kind=PaymentNotification.Kind.WEBHOOK,
        order_id=stored_order_id,
        deposit=deposit,
        payment_status=payment_status,
        body=text_raw_storable(body, max_chars=STORED_BODY_MAX),
        headers=_header_snapshot(headers),
        remote_ip=call.remote_ip,
        key_status=call.key_status,
        authenticated=authenticated,
        http_status=200,
        outcome_note="; ".join(note for note in (order_note, status_note) if note),
    )
    if deposit is None:
        notification_decide(
            notification_id=notification.pk,
            outcome=Outcome.IGNORED,
            note="an order id we never created: stored, not queried",
        )
        return WebhookResult(200, "unknown order")
    logger.info(
        "ZenoPay webhook hint deposit=%s status=%s authenticated=%s",
        deposit.pk,
        notification.payment_status,
        authenticated,
    )
    deposit_check_soon(deposit_id=deposit.pk)
    return WebhookResult(200, "received")


def deposit_check_soon(*, deposit_id) -> None:
    """The webhook's hint: poll now, in a task (the task's check is debounced)."""
    with transaction.atomic():
        DepositRequest.objects.filter(pk=deposit_id, status__in=(S.SUBMITTED, S.CANCELLED)).update(
            next_poll_at=now()
        )
        task_enqueue_on_commit("deposits.tasks.check_deposit", str(deposit_id), "webhook")


def deposit_check_again(*, deposit_id, actor) -> bool:
    """The customer's "I have paid — check again" (the page's button or the API): a check in
    a task, recorded with source ``user`` and the customer as actor. One rule limits it, the
    check's own debounce: won here, before anything is queued, so repeated presses queue at
    most one task per deposit per CHECK_DEBOUNCE. True when a check was queued; False when one
    ran moments ago (its answer is already on the page)."""
    with transaction.atomic():
        if not _check_claim(deposit_id):
            return False
        # Due at once for the poller too, should the broker lose the task.
        DepositRequest.objects.filter(pk=deposit_id, status__in=(S.SUBMITTED, S.CANCELLED)).update(
            next_poll_at=now()
        )
        task_enqueue_on_commit(
            "deposits.tasks.check_deposit", str(deposit_id), "user", str(actor.pk), True
        )
    return True
