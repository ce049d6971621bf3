"""Reads of the deposits app."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db.models import CharField, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from core.clock import now
from core.exceptions import NotFound
from core.models import AdminAction, Alert
from core.roles import BANK_ADMIN, PLATFORM_COMPLIANCE, SUPER_ADMIN, user_has_role
from deposits.models import Bank, BankStaff, DepositRequest, DepositTransition, PaymentNotification


def _uuid(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
    except (TypeError, ValueError):
        raise NotFound(_("There is no deposit %(id)s.") % {"id": value}) from None


def deposit_get(*, deposit_id, for_update: bool = False) -> DepositRequest:
    queryset = DepositRequest.objects.select_related("bank", "user", "wallet")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    deposit = queryset.filter(pk=_uuid(deposit_id)).first()
    if deposit is None:
        raise NotFound(_("There is no deposit %(id)s.") % {"id": deposit_id})
    return deposit


def deposit_owner_id(deposit_id) -> uuid.UUID | None:
    """The user a deposit benefits (its owner), or None for an unknown id: the beneficiary
    hook of the four-eyes actions on deposits (the action's own checks report a bad id)."""
    try:
        pk = _uuid(deposit_id)
    except NotFound:
        return None
    return DepositRequest.objects.filter(pk=pk).values_list("user_id", flat=True).first()


def deposits_visible_to(*, user):
    """The deposits a member of staff may see (DESIGN §9): every deposit for compliance and
    super admins, their own bank's for a bank admin (none without a bank), none for anyone
    else — a superuser without a role included. Backstage lists, detail pages and searches
    all start from here."""
    if user_has_role(user, PLATFORM_COMPLIANCE, SUPER_ADMIN):
        return DepositRequest.objects.all()
    if user_has_role(user, BANK_ADMIN):
        # The bank read first, as a constant: with a subquery instead, PostgreSQL cannot
        # tell which bank it is, and with a million deposits a bank admin's reads (another
        # bank's probe above all) scan a whole bank's rows (bench/backstage_bench.py).
        bank_ids = list(BankStaff.objects.filter(user=user).values_list("bank_id", flat=True))
        return DepositRequest.objects.filter(bank_id__in=bank_ids)
    return DepositRequest.objects.none()


def alerts_visible_to(*, user):
    """The alerts a member of staff may see and acknowledge (DESIGN §9): all of them for
    compliance and super admins; for a bank admin only the alerts about one of the deposits
    they may see (system-wide alerts name no deposit, so they stay hidden); none for anyone
    else. Backstage's alert list, detail, banner and dashboard all start from here."""
    if user_has_role(user, PLATFORM_COMPLIANCE, SUPER_ADMIN):
        return Alert.objects.all()
    if user_has_role(user, BANK_ADMIN):
        return Alert.objects.filter(deposit_id__in=deposits_visible_to(user=user).values("pk"))
    return Alert.objects.none()


def admin_actions_visible_to(*, user):
    """The audit rows a member of staff may read (DESIGN §9): all for compliance and super
    admins; for a bank admin the actions on one of the deposits they may see, and the
    acknowledgements of alerts about those deposits; none for anyone else."""
    if user_has_role(user, PLATFORM_COMPLIANCE, SUPER_ADMIN):
        return AdminAction.objects.all()
    if user_has_role(user, BANK_ADMIN):
        # target_id is text (it names records of every type): compare with the ids as text.
        ids = (
            deposits_visible_to(user=user)
            .annotate(id_text=Cast("pk", output_field=CharField()))
            .values("id_text")
        )
        return AdminAction.objects.annotate(
            about_deposit=KeyTextTransform("deposit_id", "params")
        ).filter(
            Q(target_type="deposit", target_id__in=ids)
            | Q(target_type="alert", about_deposit__in=ids)
        )
    return AdminAction.objects.none()


def user_deposits(*, user):
    return DepositRequest.objects.filter(user=user).select_related("wallet", "bank")


def user_deposit_get(*, user, deposit_id) -> DepositRequest:
    """A customer sees only their own deposits: another's is "not found"."""
    deposit = user_deposits(user=user).filter(pk=_uuid(deposit_id)).first()
    if deposit is None:
        raise NotFound(_("There is no deposit %(id)s.") % {"id": deposit_id})
    return deposit


# --- The customer's view of a deposit (pages and API) ------------------------------------------

S = DepositRequest.Status
ZENOPAY = DepositRequest.Provider.ZENOPAY
# After this long without a confirmation the page says it is taking longer than usual.
PAYMENT_SLOW_AFTER = dt.timedelta(seconds=90)
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")

# Where a deposit is on the customer's journey: 1 payment requested, 2 payment received,
# 3 minting, 4 minted (0: off the journey, e.g. cancelled).
_STEP_OF_STAGE = {
    "sending": 1,
    "awaiting_payment": 1,
    "prompt_uncertain": 1,
    "awaiting_transfer": 1,
    "payment_received": 2,
    "safe": 2,
    "mint_delayed": 2,
    "minting": 3,
    "minted": 4,
}
# A hold on a cancelled or rejected deposit means a payment arrived and is being reviewed:
# the customer sees "under review", never "try again".
_HOLD_SHOWN_UNLESS = (S.MINTED, S.REFUNDED)
# Stages that change within seconds are polled often; the others (people or a multisig
# must act) rarely.
_FAST_STAGES = ("sending", "awaiting_payment", "prompt_uncertain", "payment_received", "minting")


@dataclass(frozen=True)
class DepositProgress:
    stage: str  # sending|awaiting_payment|prompt_uncertain|awaiting_transfer|held|
    #            payment_received|safe|mint_delayed|minting|minted|failed|refunded
    failure: str  # "" or declined|cancelled|timed_out|refused|rejected (stage "failed")
    slow: bool  # a mobile money confirmation is taking longer than usual
    can_check: bool  # offer "I have entered my PIN — check now" (or "… already paid …")
    can_retry: bool  # offer "try again": nothing is pending, paying again is safe

    @property
    def step(self) -> int:
        return _STEP_OF_STAGE.get(self.stage, 0)

    @property
    def final(self) -> bool:
        return self.stage in ("minted", "failed", "refunded")

    @property
    def poll_seconds(self) -> int:
        """How often a page showing this deposit asks again (0: never)."""
        if self.final:
            return 0
        return 4 if self.stage in _FAST_STAGES else 15


def tx_explorer_url(tx_hash: str) -> str:
    """The explorer page of a transaction on this chain: "" for anything but a tx hash, and
    on a chain without an explorer (a local anvil: a link would lead to another network's
    explorer, where the transaction does not exist)."""
    base = settings.EXPLORER_URL
    return f"{base}/tx/{tx_hash}" if base and _TX_HASH.match(tx_hash or "") else ""


def deposit_failure_kind(*, deposit: DepositRequest) -> str:
    """Why a deposit ended without a mint, in terms a customer can act on."""
    if deposit.status == S.REJECTED:
        return "rejected"
    if deposit.status != S.CANCELLED:
        return ""
    if deposit.initiation == DepositRequest.Initiation.REFUSED:
        return "refused"
    refusal = (
        PaymentNotification.objects.filter(
            deposit=deposit,
            kind=PaymentNotification.Kind.ORDER_STATUS,
            outcome=PaymentNotification.Outcome.APPLIED,
            payment_status__in=("FAILED", "CANCELLED"),
        )
        .order_by("-received_at")
        .values_list("payment_status", flat=True)
        .first()
    )
    if refusal == "FAILED":
        return "declined"
    if refusal == "CANCELLED":
        return "cancelled"
    cancel = deposit.transitions.filter(to_status=S.CANCELLED).order_by("-at", "-id").first()
    if cancel is not None and cancel.source == DepositTransition.Source.SYSTEM:
        return "timed_out"  # the 72-hour expiry
    return "cancelled"


def deposit_checkable(*, deposit: DepositRequest) -> bool:
    """Whether asking ZenoPay about this deposit again can change anything."""
    return (
        deposit.payment_provider == ZENOPAY
        and not deposit.hold_reason
        and deposit.status in (S.SUBMITTED, S.CANCELLED)
    )


def _submitted_stage(deposit: DepositRequest) -> str:
    if deposit.payment_provider != ZENOPAY:
        return "awaiting_transfer"
    if deposit.initiation == DepositRequest.Initiation.PENDING:
        return "sending"
    if deposit.initiation == DepositRequest.Initiation.UNCERTAIN:
        return "prompt_uncertain"
    return "awaiting_payment"


def _stage(deposit: DepositRequest) -> str:
    if deposit.hold_reason and deposit.status not in _HOLD_SHOWN_UNLESS:
        return "held"
    return {
        S.SUBMITTED: _submitted_stage(deposit),
        S.MINT_PENDING: "payment_received",
        S.MINT_REQUIRES_SAFE: "safe",
        S.MINT_FAILED: "mint_delayed",
        S.MINT_PROCESSING: "minting",
        S.MINTED: "minted",
        S.REFUNDED: "refunded",
    }.get(deposit.status, "failed")


def deposit_progress(*, deposit: DepositRequest) -> DepositProgress:
    """The customer's view of a deposit: the stage, why it failed, and what they may do.

    While a mobile money payment is unresolved there is never a "try again": the customer
    may have paid, and a second deposit would take their money twice.

    "Check now" is offered as soon as the payment request is on the phone: what the customer
    waits for, once they have entered their PIN, is our confirmation, and that is the moment
    they want to ask for it (not 90 seconds later). Asking early costs nothing: a check only
    reads ZenoPay's order status, and repeated taps are debounced by the service."""
    stage = _stage(deposit)
    failure = deposit_failure_kind(deposit=deposit) if stage == "failed" else ""
    waiting = stage in ("awaiting_payment", "prompt_uncertain", "sending")
    slow = waiting and now() - deposit.created_at >= PAYMENT_SLOW_AFTER
    checkable = deposit_checkable(deposit=deposit)
    can_check = checkable and (
        stage in ("awaiting_payment", "prompt_uncertain") or failure == "timed_out"
    )
    return DepositProgress(
        stage=stage, failure=failure, slow=slow, can_check=can_check, can_retry=stage == "failed"
    )


@dataclass(frozen=True)
class DepositStageTimes:
    """When a deposit first reached each step of the customer's journey (None: not reached,
    or passed over, as a Safe mint passes over "minting")."""

    requested: dt.datetime | None  # created: payment requested or transfer awaited
    received: dt.datetime | None  # payment confirmed (mint_pending or the Safe lane)
    minting: dt.datetime | None  # claimed by the mint worker
    minted: dt.datetime | None


_STEP_OF_STATUS = {
    S.MINT_PENDING: "received",
    S.MINT_REQUIRES_SAFE: "received",
    S.MINT_PROCESSING: "minting",
    S.MINTED: "minted",
}


def deposit_stage_times(*, deposit: DepositRequest) -> DepositStageTimes:
    """From the deposit's transition rows, so a page that catches up in one step (a poll
    that finds the deposit minted) still shows every stage it passed, with its time."""
    times: dict[str, dt.datetime] = {}
    rows = deposit.transitions.order_by("at", "id").values_list("from_status", "to_status", "at")
    for from_status, to_status, at in rows:
        if not from_status:
            times.setdefault("requested", at)
        elif to_status != from_status and to_status in _STEP_OF_STATUS:
            times.setdefault(_STEP_OF_STATUS[to_status], at)
    return DepositStageTimes(
        requested=times.get("requested"),
        received=times.get("received"),
        minting=times.get("minting"),
        minted=times.get("minted"),
    )


def user_unresolved_payments(*, user):
    """The customer's mobile money deposits whose payment is still open (the new-deposit page
    points at them instead of inviting a second payment)."""
    return user_deposits(user=user).filter(payment_provider=ZENOPAY, status=S.SUBMITTED)


def banks_for_transfer():
    """The banks a customer may choose for a bank transfer."""
    return Bank.objects.filter(status=Bank.Status.ACTIVE).order_by("name")
