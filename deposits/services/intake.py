"""Creating a deposit: the one service the pages, the API and the admin call (DESIGN §5).

Limits hold under concurrency: the user's row is locked for the check-and-insert, so two
requests of one user are serialised and cannot together pass a limit. Every refusal by a
limit leaves a LimitEvent, committed even though the request fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import User, Wallet
from accounts.selectors import user_kyc_approved
from core.clock import now
from core.services import task_enqueue_on_commit
from deposits.exceptions import IdempotencyConflict, InvalidDeposit, LimitRefused
from deposits.models import Bank, DepositRequest, DepositTransition, LimitEvent
from deposits.phones import phone_normalize_tz

S = DepositRequest.Status
Provider = DepositRequest.Provider
NOT_COUNTED = (S.CANCELLED, S.REJECTED, S.REFUNDED)
IDENTICAL_WINDOW = dt.timedelta(minutes=5)
RATE_WINDOW_S = 600
MAX_SANE_AMOUNT_TZS = 10**15  # beyond any limit; keeps a typo from overflowing a bigint
FIRST_POLL_AFTER = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class DepositInput:
    amount_tzs: object
    payment_provider: str
    wallet_id: object
    buyer_phone: str = ""
    bank_id: object = None
    idempotency_key: str | None = None


def _clean_amount(value: object) -> int:
    if isinstance(value, bool):
        raise InvalidDeposit(_("Enter the amount in whole shillings."), field="amount_tzs")
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "").replace(" ", "")
        if not text.isdigit():
            raise InvalidDeposit(
                _("Enter the amount in whole shillings, for example 5000."), field="amount_tzs"
            )
        value = int(text)
    if not isinstance(value, int):
        raise InvalidDeposit(
            _("Enter the amount in whole shillings, for example 5000."), field="amount_tzs"
        )
    if value <= 0:
        raise InvalidDeposit(_("The amount must be more than zero."), field="amount_tzs")
    if value > MAX_SANE_AMOUNT_TZS:
        raise InvalidDeposit(
            _("That amount is far too large; check the number."), field="amount_tzs"
        )
    return value


def _parse_uuid(value: object, field: str, message: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise InvalidDeposit(message, field=field) from None


def _verified_wallet(user: User, wallet_id: object) -> Wallet:
    pk = _parse_uuid(wallet_id, "wallet", _("Choose one of your verified wallets."))
    wallet = Wallet.objects.filter(pk=pk, user=user).first()
    if wallet is None or wallet.verified_at is None:
        raise InvalidDeposit(_("Choose one of your verified wallets."), field="wallet")
    return wallet


def _bank_for(provider: str, bank_id: object) -> Bank:
    if provider == Provider.ZENOPAY:
        bank = Bank.objects.filter(is_zenopay_settlement=True, status=Bank.Status.ACTIVE).first()
        if bank is None:
            raise InvalidDeposit(
                _("Mobile money deposits are not available right now; please try again later."),
                field="payment_provider",
            )
        return bank
    pk = _parse_uuid(bank_id, "bank", _("Choose the bank you will transfer from."))
    bank = Bank.objects.filter(pk=pk, status=Bank.Status.ACTIVE).first()
    if bank is None:
        raise InvalidDeposit(_("Choose the bank you will transfer from."), field="bank")
    return bank


def _fingerprint(*, amount_tzs: int, provider: str, phone: str, wallet_id, bank_id) -> str:
    body = json.dumps(
        {
            "amount_tzs": amount_tzs,
            "provider": provider,
            "phone": phone,
            "wallet": str(wallet_id),
            "bank": str(bank_id),
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _limit_refusal(
    *, user: User, kind: str, requested: int, limit: int, used: int, message: str
) -> LimitRefused:
    LimitEvent.objects.create(
        user=user,
        kind=kind,
        subject=str(user.pk),
        requested_tzs=requested,
        limit_tzs=limit,
        used_tzs=used,
    )
    return LimitRefused(message, kind=kind)


def _check_amount_bounds(user: User, amount: int) -> LimitRefused | None:
    if amount < settings.MIN_DEPOSIT_TZS:
        return _limit_refusal(
            user=user,
            kind=LimitEvent.Kind.MIN_DEPOSIT,
            requested=amount,
            limit=settings.MIN_DEPOSIT_TZS,
            used=0,
            message=_("The smallest deposit is TSh %(min)s.")
            % {"min": f"{settings.MIN_DEPOSIT_TZS:,}"},
        )
    if amount > settings.MAX_DEPOSIT_TZS:
        return _limit_refusal(
            user=user,
            kind=LimitEvent.Kind.MAX_DEPOSIT,
            requested=amount,
            limit=settings.MAX_DEPOSIT_TZS,
            used=0,
            message=_("The largest single deposit is TSh %(max)s.")
            % {"max": f"{settings.MAX_DEPOSIT_TZS:,}"},
        )
    return None


def user_deposit_usage(*, user_id, since: dt.datetime) -> int:
    """Shillings of the user's deposits created since ``since`` that count towards limits."""
    total = (
        DepositRequest.objects.filter(user_id=user_id, created_at__gte=since)
        .exclude(status__in=NOT_COUNTED)
        .aggregate(total=Sum("amount_tzs"))["total"]
    )
    return total or 0


def period_starts(at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    day_start = dt.datetime.combine(at.astimezone(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    return day_start, at - dt.timedelta(days=30)


PERIOD_LIMIT_MESSAGES = {
    LimitEvent.Kind.USER_DAILY: gettext_noop(
        "This deposit would take you over your daily limit of TSh %(limit)s "
        "(TSh %(left)s left today)."
    ),
    LimitEvent.Kind.USER_MONTHLY: gettext_noop(
        "This deposit would take you over your 30-day limit of TSh %(limit)s (TSh %(left)s left)."
    ),
}


def _check_period_limits(user: User, amount: int, at: dt.datetime) -> LimitRefused | None:
    day_start, month_start = period_starts(at)
    periods = (
        (LimitEvent.Kind.USER_DAILY, day_start, settings.USER_DAILY_LIMIT_TZS),
        (LimitEvent.Kind.USER_MONTHLY, month_start, settings.USER_MONTHLY_LIMIT_TZS),
    )
    for kind, since, limit in periods:
        used = user_deposit_usage(user_id=user.pk, since=since)
        if used + amount > limit:
            message = _(PERIOD_LIMIT_MESSAGES[kind]) % {
                "limit": f"{limit:,}",
                "left": f"{max(limit - used, 0):,}",
            }
            return _limit_refusal(
                user=user, kind=kind, requested=amount, limit=limit, used=used, message=message
            )
    return None


PAYING_PHONES_WINDOW = dt.timedelta(days=30)


def _check_paying_phones(
    user: User, amount: int, phone: str, at: dt.datetime
) -> LimitRefused | None:
    """At most MAX_PAYING_PHONES_PER_30_DAYS distinct numbers receive this user's payment
    prompts in 30 days, counting every mobile-money deposit created (paid or not: the prompt
    went out either way), so one account cannot aim prompts at strangers' phones.

    Its LimitEvent counts numbers, not shillings: ``subject`` is the refused number,
    ``limit_tzs`` the number of phones allowed, ``used_tzs`` the distinct numbers already
    used in the window, ``requested_tzs`` the amount of the refused deposit."""
    limit = settings.MAX_PAYING_PHONES_PER_30_DAYS
    used = set(
        DepositRequest.objects.filter(
            user=user, payment_provider=Provider.ZENOPAY, created_at__gt=at - PAYING_PHONES_WINDOW
        )
        .exclude(buyer_phone="")
        .values_list("buyer_phone", flat=True)
        .distinct()
    )
    if phone in used or len(used) < limit:
        return None
    LimitEvent.objects.create(
        user=user,
        kind=LimitEvent.Kind.PAYING_PHONES,
        subject=phone,
        requested_tzs=amount,
        limit_tzs=limit,
        used_tzs=len(used),
    )
    return LimitRefused(
        _(
            "You have paid from %(limit)d different phone numbers in the last 30 days; pay from "
            "one of them, or wait until the oldest drops out of the 30 days."
        )
        % {"limit": limit},
        kind=LimitEvent.Kind.PAYING_PHONES,
    )


def _check_rate(user: User, amount: int) -> LimitRefused | None:
    """Per-user creation rate on the shared cache (Redis; the database cache locally)."""
    window = int(now().timestamp()) // RATE_WINDOW_S
    key = f"deposit-create-rate:{user.pk}:{window}"
    cache.add(key, 0, timeout=RATE_WINDOW_S * 2)
    count = cache.incr(key)
    if count > settings.DEPOSIT_CREATE_MAX_PER_10_MIN:
        return _limit_refusal(
            user=user,
            kind=LimitEvent.Kind.RATE,
            requested=amount,
            limit=settings.DEPOSIT_CREATE_MAX_PER_10_MIN,
            used=count - 1,
            message=_("Too many deposits started in a short time; please wait a few minutes."),
        )
    return None


def _idempotent_replay(user: User, key: str, fingerprint: str) -> DepositRequest | None:
    existing = DepositRequest.objects.filter(user=user, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            _(
                "This Idempotency-Key was already used for a different "
                "deposit; use a new key for a new deposit."
            )
        )
    return existing


def _identical_recent(user: User, amount: int, phone: str, at: dt.datetime):
    return (
        DepositRequest.objects.filter(
            user=user,
            amount_tzs=amount,
            buyer_phone=phone,
            payment_provider=Provider.ZENOPAY,
            status=S.SUBMITTED,
            initiation=DepositRequest.Initiation.REQUESTED,
            created_at__gte=at - IDENTICAL_WINDOW,
        )
        .order_by("-created_at")
        .first()
    )


def _transfer_reference() -> str:
    return "NTZS" + uuid.uuid4().hex[:8].upper()


@transaction.atomic
def _create_locked(
    *,
    user: User,
    data: DepositInput,
    amount: int,
    phone: str,
    wallet: Wallet,
    bank: Bank,
    fingerprint: str,
):
    at = now()
    User.objects.select_for_update().filter(pk=user.pk).first()  # serialise this user's creates
    if data.idempotency_key:
        replay = _idempotent_replay(user, data.idempotency_key, fingerprint)
        if replay is not None:
            return replay, False
    if data.payment_provider == Provider.ZENOPAY:
        identical = _identical_recent(user, amount, phone, at)
        if identical is not None:
            return identical, False
    zenopay = data.payment_provider == Provider.ZENOPAY
    # Checked under the same user lock as the amounts, so concurrent creates cannot together
    # bring in a fourth number; the refusal is returned, so its LimitEvent commits.
    refusal = (
        _check_paying_phones(user, amount, phone, at) if zenopay else None
    ) or _check_period_limits(user, amount, at)
    if refusal is not None:
        return refusal, False
    deposit = DepositRequest.objects.create(
        user=user,
        bank=bank,
        wallet=wallet,
        chain=wallet.chain,
        amount_tzs=amount,
        payment_provider=data.payment_provider,
        buyer_phone=phone,
        initiation=DepositRequest.Initiation.PENDING if zenopay else None,
        transfer_reference=None if zenopay else _transfer_reference(),
        idempotency_key=data.idempotency_key or None,
        request_fingerprint=fingerprint,
        next_poll_at=at + FIRST_POLL_AFTER if zenopay else None,
        created_at=at,
        updated_at=at,
    )
    DepositTransition.objects.create(
        deposit=deposit,
        from_status="",
        to_status=S.SUBMITTED,
        source=DepositTransition.Source.USER,
        actor=user,
        note="deposit created",
    )
    if zenopay:
        task_enqueue_on_commit("deposits.tasks.initiate_payment", str(deposit.pk))
    return deposit, True


def deposit_create(*, user: User, data: DepositInput) -> tuple[DepositRequest, bool]:
    """Create a deposit, or return the one a replay or an identical recent request made.

    Returns (deposit, created). Raises InvalidDeposit, LimitRefused or IdempotencyConflict.
    """
    if not user_kyc_approved(user):
        raise InvalidDeposit(_("Your identity check must be approved before you can deposit."))
    if data.payment_provider not in Provider.values:
        raise InvalidDeposit(_("Choose mobile money or bank transfer."), field="payment_provider")
    amount = _clean_amount(data.amount_tzs)
    wallet = _verified_wallet(user, data.wallet_id)
    bank = _bank_for(data.payment_provider, data.bank_id)
    if data.payment_provider == Provider.ZENOPAY or (data.buyer_phone or "").strip():
        phone = phone_normalize_tz(data.buyer_phone)
    else:
        phone = ""
    key = (data.idempotency_key or "").strip() or None
    if key is not None and len(key) > 100:
        raise InvalidDeposit(_("The Idempotency-Key is too long (100 characters at most)."))
    data = DepositInput(**{**data.__dict__, "idempotency_key": key})
    fingerprint = _fingerprint(
        amount_tzs=amount,
        provider=data.payment_provider,
        phone=phone,
        wallet_id=wallet.pk,
        bank_id=bank.pk,
    )
    if key is not None:
        replay = _idempotent_replay(user, key, fingerprint)
        if replay is not None:
            return replay, False
    refusal = _refusal_committed(user, amount)
    if refusal is not None:
        raise refusal
    try:
        result, created = _create_locked(
            user=user,
            data=data,
            amount=amount,
            phone=phone,
            wallet=wallet,
            bank=bank,
            fingerprint=fingerprint,
        )
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the insert.
        replay = _idempotent_replay(user, key, fingerprint) if key else None
        if replay is None:
            raise
        return replay, False
    if isinstance(result, LimitRefused):
        raise result
    return result, created


@transaction.atomic
def _refusal_committed(user: User, amount: int) -> LimitRefused | None:
    """Bounds and rate checks whose LimitEvent must be committed before the refusal."""
    return _check_amount_bounds(user, amount) or _check_rate(user, amount)
