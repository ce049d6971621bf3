import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.clock import now
from core.models import AppendOnlyModel


class Bank(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.ACTIVE)
    # The bank where ZenoPay settles: the bank of every ZenoPay deposit. At most one.
    is_zenopay_settlement = models.BooleanField(default=False)
    # What a customer needs to make a transfer (account name and number, branch).
    transfer_instructions = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_zenopay_settlement"],
                condition=Q(is_zenopay_settlement=True),
                name="bank_one_zenopay_settlement",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BankStaff(models.Model):
    """Which bank a ``bank_admin`` acts for."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bank_staff"
    )
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="staff")

    def __str__(self) -> str:
        return f"{self.user} @ {self.bank}"


DEPOSIT_STATUSES = [
    "submitted",
    "cancelled",
    "rejected",
    "mint_pending",
    "mint_processing",
    "minted",
    "mint_failed",
    "mint_requires_safe",
    "refunded",
]


class DepositRequest(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted"
        CANCELLED = "cancelled"
        REJECTED = "rejected"
        MINT_PENDING = "mint_pending"
        MINT_PROCESSING = "mint_processing"
        MINTED = "minted"
        MINT_FAILED = "mint_failed"
        MINT_REQUIRES_SAFE = "mint_requires_safe"
        REFUNDED = "refunded"

    class Provider(models.TextChoices):
        ZENOPAY = "zenopay"
        BANK_TRANSFER = "bank_transfer"

    class Initiation(models.TextChoices):
        PENDING = "pending"
        REQUESTED = "requested"
        UNCERTAIN = "uncertain"
        REFUSED = "refused"

    # The id is also the ZenoPay order_id.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposits"
    )
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="deposits")
    wallet = models.ForeignKey(
        "accounts.Wallet", on_delete=models.PROTECT, related_name="deposits"
    )  # never changes
    chain = models.CharField(max_length=16, default="base")
    amount_tzs = models.BigIntegerField()  # whole shillings; > 0 (check constraint)
    status = models.CharField(max_length=24, choices=Status, default=Status.SUBMITTED)
    status_reason = models.TextField(blank=True)  # why cancelled/rejected, shown to the customer
    payment_provider = models.CharField(max_length=16, choices=Provider)
    buyer_phone = models.CharField(max_length=16, blank=True)  # E.164
    initiation = models.CharField(max_length=16, choices=Initiation, null=True, blank=True)
    initiation_error = models.TextField(blank=True)
    # The reference a bank-transfer customer writes on the transfer.
    transfer_reference = models.CharField(max_length=20, null=True, blank=True, unique=True)
    # ZenoPay transid (or data[0].reference when transid is null), or the bank's reference.
    psp_reference = models.CharField(max_length=100, blank=True)
    psp_channel = models.CharField(max_length=40, blank=True)
    fiat_confirmed_at = models.DateTimeField(null=True, blank=True)
    fiat_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)  # of the create body
    # A flag: while set nothing claims, polls or expires the deposit, and no payment is
    # confirmed for it. Chain facts are always recorded.
    hold_reason = models.CharField(max_length=200, blank=True)
    hold_details = models.JSONField(default=dict, blank=True)  # e.g. the paid amount seen
    next_poll_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    poll_attempts = models.PositiveIntegerField(default=0)
    mint_tx_hash = models.CharField(max_length=66, blank=True)  # copied when minted
    minted_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_tzs__gt=0), name="deposit_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=DEPOSIT_STATUSES), name="deposit_status_valid"
            ),
            # One payment credits one deposit (DESIGN §4, invariant 7).
            models.UniqueConstraint(
                fields=["payment_provider", "psp_reference"],
                condition=Q(payment_provider="zenopay") & ~Q(psp_reference=""),
                name="deposit_unique_zenopay_reference",
            ),
            models.UniqueConstraint(
                fields=["bank", "psp_reference"],
                condition=Q(payment_provider="bank_transfer") & ~Q(psp_reference=""),
                name="deposit_unique_bank_reference",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="deposit_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["status"]),  # queues by status
            models.Index(fields=["next_poll_at"]),  # the poller's due rows
            models.Index(fields=["user", "created_at"]),  # limits and the history page
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount_tzs} TZS ({self.status})"

    @property
    def is_held(self) -> bool:
        return bool(self.hold_reason)


class DepositTransition(AppendOnlyModel):
    class Source(models.TextChoices):
        USER = "user"
        WEBHOOK = "webhook"
        POLL = "poll"
        ADMIN = "admin"
        WORKER = "worker"
        SAFE = "safe"
        SYSTEM = "system"

    deposit = models.ForeignKey(
        DepositRequest, on_delete=models.PROTECT, related_name="transitions"
    )
    from_status = models.CharField(max_length=24, blank=True)  # blank: created
    to_status = models.CharField(max_length=24)  # equal to from_status for a hold set/clear
    source = models.CharField(max_length=16, choices=Source)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.deposit_id}: {self.from_status or '-'} -> {self.to_status}"


class DepositApproval(AppendOnlyModel):
    class Type(models.TextChoices):
        BANK = "bank"
        PLATFORM = "platform"

    class Decision(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"

    deposit = models.ForeignKey(DepositRequest, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    type = models.CharField(max_length=16, choices=Type)
    decision = models.CharField(max_length=16, choices=Decision)
    reason = models.TextField(blank=True)
    bank_reference = models.CharField(max_length=100, blank=True)
    # Bank type: whole shillings the bank says arrived (a different amount holds the deposit).
    amount_received_tzs = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deposit", "type"], name="approval_one_per_type"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.decision} {self.deposit_id}"


class PaymentNotification(models.Model):
    """Every webhook call and every order-status answer, raw, in its own committed
    transaction. ``outcome`` starts pending and is set once, by compare-and-set."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook"
        ORDER_STATUS = "order_status"

    class Outcome(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        DUPLICATE = "duplicate"
        IGNORED = "ignored"
        REJECTED = "rejected"
        ORPHAN = "orphan"
        HELD = "held"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=16, default="zenopay")
    kind = models.CharField(max_length=16, choices=Kind)
    order_id = models.CharField(max_length=100, blank=True)
    deposit = models.ForeignKey(
        DepositRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
    )
    payment_status = models.CharField(max_length=32, blank=True)
    body = models.TextField(blank=True)  # raw, capped at 16 KB
    headers = models.JSONField(default=dict, blank=True)  # without secrets
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    key_status = models.CharField(max_length=16, blank=True)  # absent|valid|invalid
    authenticated = models.BooleanField(default=False)  # the webhook_url token was valid
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome, default=Outcome.PENDING)
    outcome_note = models.TextField(blank=True)
    received_at = models.DateTimeField(default=now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["deposit", "outcome"])]  # pending hints of a deposit

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id} {self.payment_status} ({self.outcome})"


class WebhookRefusalCount(models.Model):
    """Anonymous webhook calls refused for rate or size, counted per client and minute.

    Only the first few calls of a minute are stored as ``PaymentNotification`` samples; the
    rest only raise this count, so an anonymous flood cannot fill the database.
    """

    class Reason(models.TextChoices):
        RATE = "rate"
        SIZE = "size"

    # The client counted: an IPv4 address or an IPv6 /64 (core.http.client_throttle_key).
    remote_ip = models.CharField(max_length=45, blank=True)  # "" when unknown
    minute = models.DateTimeField()  # the UTC minute the calls arrived in
    reason = models.CharField(max_length=8, choices=Reason)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["remote_ip", "minute", "reason"], name="webhook_refusal_one_row_per_minute"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.remote_ip} {self.minute:%Y-%m-%d %H:%M} {self.reason} x{self.count}"


class OrphanPayment(models.Model):
    class Status(models.TextChoices):
        UNMATCHED = "unmatched"
        MATCHED = "matched"
        DISMISSED = "dismissed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=16, default="zenopay")
    psp_reference = models.CharField(max_length=100)
    amount_tzs = models.BigIntegerField()  # whole shillings, as the PSP reported
    phone = models.CharField(max_length=16, blank=True)
    channel = models.CharField(max_length=40, blank=True)
    source_deposit = models.ForeignKey(
        DepositRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="orphans_seen"
    )
    reason = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status, default=Status.UNMATCHED)
    matched_deposit = models.OneToOneField(
        DepositRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orphan_attached",
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "psp_reference"], name="orphan_unique_reference"
            ),
            models.CheckConstraint(condition=Q(amount_tzs__gt=0), name="orphan_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"orphan {self.psp_reference} {self.amount_tzs} TZS ({self.status})"


class LimitEvent(AppendOnlyModel):
    class Kind(models.TextChoices):
        MIN_DEPOSIT = "min_deposit"
        MAX_DEPOSIT = "max_deposit"
        USER_DAILY = "user_daily"
        USER_MONTHLY = "user_monthly"
        RATE = "rate"
        PAYING_PHONES = "paying_phones"  # distinct paying numbers in 30 days
        RECOVERY = "recovery"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="limit_events"
    )
    kind = models.CharField(max_length=16, choices=Kind)
    subject = models.CharField(max_length=100)  # what the limit applies to (user id)
    requested_tzs = models.BigIntegerField()
    limit_tzs = models.BigIntegerField()
    used_tzs = models.BigIntegerField(default=0)  # already used in the period
    deposit = models.ForeignKey(
        DepositRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="limit_events"
    )
    at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.requested_tzs}/{self.limit_tzs}"
