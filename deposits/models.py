import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.clock import now
from core.models import AppendOnlyModel


class Bank(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True, verbose_name=_("name"))
    status = models.CharField(
        max_length=16, choices=Status, default=Status.ACTIVE, verbose_name=_("status")
    )
    # The bank where ZenoPay settles: the bank of every ZenoPay deposit. At most one.
    is_zenopay_settlement = models.BooleanField(
        default=False, verbose_name=_("ZenoPay settlement bank")
    )
    # Our account at this bank, shown to a customer making a transfer (DESIGN §4).
    account_name = models.CharField(max_length=200, blank=True, verbose_name=_("account name"))
    account_number = models.CharField(max_length=64, blank=True, verbose_name=_("account number"))
    # Anything else the customer needs for the transfer (branch, SWIFT code), shown under
    # the account; never internal notes: customers read it.
    transfer_instructions = models.TextField(blank=True, verbose_name=_("transfer instructions"))

    class Meta:
        verbose_name = _("bank")
        verbose_name_plural = _("banks")
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
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="bank_staff",
        verbose_name=_("user"),
    )
    bank = models.ForeignKey(
        Bank, on_delete=models.PROTECT, related_name="staff", verbose_name=_("bank")
    )

    class Meta:
        verbose_name = _("bank staff member")
        verbose_name_plural = _("bank staff")

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
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="deposits",
        verbose_name=_("customer"),
    )
    bank = models.ForeignKey(
        Bank, on_delete=models.PROTECT, related_name="deposits", verbose_name=_("bank")
    )
    # Never changes.
    wallet = models.ForeignKey(
        "accounts.Wallet",
        on_delete=models.PROTECT,
        related_name="deposits",
        verbose_name=_("wallet"),
    )
    chain = models.CharField(max_length=16, default="base", verbose_name=_("chain"))
    # Whole shillings; > 0 (check constraint).
    amount_tzs = models.BigIntegerField(verbose_name=_("amount (TZS)"))
    status = models.CharField(
        max_length=24, choices=Status, default=Status.SUBMITTED, verbose_name=_("status")
    )
    # Why cancelled/rejected, shown to the customer.
    status_reason = models.TextField(blank=True, verbose_name=_("status reason"))
    payment_provider = models.CharField(
        max_length=16, choices=Provider, verbose_name=_("payment provider")
    )
    # E.164
    buyer_phone = models.CharField(max_length=16, blank=True, verbose_name=_("buyer phone"))
    initiation = models.CharField(
        max_length=16, choices=Initiation, null=True, blank=True, verbose_name=_("initiation")
    )
    initiation_error = models.TextField(blank=True, verbose_name=_("initiation error"))
    # When initiation became requested (committed before the create is sent), when the create
    # began to be sent (the last write before the HTTP call, by compare-and-set), and when
    # ZenoPay answered it (accepted or refused). Requested and never stamped as sending: the
    # create provably never left (a worker killed in between); it is re-sent, by
    # ``initiation_resent_at``'s compare-and-set, when ZenoPay's order-status still does not
    # know the order (deposits.services.payments.payment_initiate_resend). Stamped without an
    # answer: it may have reached ZenoPay, and is never re-sent.
    initiation_requested_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("initiation requested at")
    )
    initiation_sending_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("initiation sending at")
    )
    initiation_answered_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("initiation answered at")
    )
    initiation_resent_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("initiation re-sent at")
    )
    # The reference a bank-transfer customer writes on the transfer.
    transfer_reference = models.CharField(
        max_length=20, null=True, blank=True, unique=True, verbose_name=_("transfer reference")
    )
    # ZenoPay transid (or data[0].reference when transid is null), or the bank's reference.
    psp_reference = models.CharField(max_length=100, blank=True, verbose_name=_("PSP reference"))
    psp_channel = models.CharField(max_length=40, blank=True, verbose_name=_("PSP channel"))
    fiat_confirmed_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("fiat confirmed at")
    )
    fiat_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("fiat confirmed by"),
    )
    idempotency_key = models.CharField(
        max_length=100, null=True, blank=True, verbose_name=_("idempotency key")
    )
    # A hash of the create body.
    request_fingerprint = models.CharField(
        max_length=64, blank=True, verbose_name=_("request fingerprint")
    )
    # A flag: while set nothing claims, polls or expires the deposit, and no payment is
    # confirmed for it. Chain facts are always recorded.
    hold_reason = models.CharField(max_length=200, blank=True, verbose_name=_("hold reason"))
    # E.g. the paid amount seen.
    hold_details = models.JSONField(default=dict, blank=True, verbose_name=_("hold details"))
    next_poll_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next poll at"))
    last_checked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last checked at"))
    poll_attempts = models.PositiveIntegerField(default=0, verbose_name=_("poll attempts"))
    # Copied when minted.
    mint_tx_hash = models.CharField(
        max_length=66, blank=True, verbose_name=_("mint transaction hash")
    )
    minted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("minted at"))
    cancelled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("cancelled at"))
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=now, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("deposit")
        verbose_name_plural = _("deposits")
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
        # Each index names the reads it serves; bench/backstage_bench.py times them with a
        # million deposits (make bench-backstage).
        indexes = [
            # Queues by status, newest first: the Backstage list filtered by status (its
            # "-created_at, -id" order read straight off the index), the dashboard's counts
            # per status (from the index alone: id is in it) and its oldest-waiting ages, the
            # workers' queues.
            models.Index(fields=["status", "created_at", "id"], name="deposit_status_created_idx"),
            models.Index(fields=["next_poll_at"]),  # the poller's due rows
            models.Index(fields=["user", "created_at"]),  # limits and the history page
            # The Backstage deposit list, newest first ("-created_at, -id"), unfiltered or by
            # a date range, and the dashboard's deposits per day.
            models.Index(fields=["created_at", "id"], name="deposit_created_idx"),
            # Held deposits, newest first: the list's "held" filter and the held count (a
            # few rows out of a million, so a partial index).
            models.Index(
                fields=["created_at", "id"],
                condition=~Q(hold_reason=""),
                name="deposit_held_created_idx",
            ),
            # Backstage search (DepositRequestAdmin.get_search_results), each an exact match:
            # a ZenoPay transid or a bank's reference, a payer's phone (E.164), a mint hash.
            models.Index(fields=["psp_reference"], name="deposit_psp_reference_idx"),
            models.Index(fields=["buyer_phone"], name="deposit_buyer_phone_idx"),
            models.Index(fields=["mint_tx_hash"], name="deposit_mint_tx_hash_idx"),
            # Creates claimed and not yet sending: the beat's re-send query. A row is in it
            # only between the claim and the stamp (or until re-sent, when the create never
            # left), so the index stays a few rows.
            models.Index(
                fields=["initiation_requested_at"],
                condition=Q(
                    initiation="requested",
                    initiation_requested_at__isnull=False,
                    initiation_answered_at__isnull=True,
                    initiation_sending_at__isnull=True,
                ),
                name="deposit_create_unsent_idx",
            ),
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
        DepositRequest,
        on_delete=models.PROTECT,
        related_name="transitions",
        verbose_name=_("deposit"),
    )
    # Blank: created.
    from_status = models.CharField(max_length=24, blank=True, verbose_name=_("from status"))
    # Equal to from_status for a hold set/clear.
    to_status = models.CharField(max_length=24, verbose_name=_("to status"))
    source = models.CharField(max_length=16, choices=Source, verbose_name=_("source"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    note = models.TextField(blank=True, verbose_name=_("note"))
    metadata = models.JSONField(default=dict, blank=True, verbose_name=_("metadata"))
    at = models.DateTimeField(default=now, verbose_name=_("time"))

    class Meta:
        verbose_name = _("deposit transition")
        verbose_name_plural = _("deposit transitions")
        ordering = ["at", "id"]
        indexes = [
            # The Backstage ledger of transitions, newest first (several rows per deposit:
            # the biggest table).
            models.Index(fields=["at", "id"], name="transition_at_idx"),
            # Entries into the Safe lane: the dashboard's and the Safe queue's "waiting in
            # the Safe lane since" (a hold set or cleared is a transition to the same status
            # and does not count). Only those rows, so a small index.
            models.Index(
                fields=["deposit", "at"],
                condition=Q(to_status="mint_requires_safe") & ~Q(from_status="mint_requires_safe"),
                name="transition_into_safe_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.deposit_id}: {self.from_status or '-'} -> {self.to_status}"


class DepositApproval(AppendOnlyModel):
    class Type(models.TextChoices):
        BANK = "bank"
        PLATFORM = "platform"

    class Decision(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"

    deposit = models.ForeignKey(
        DepositRequest,
        on_delete=models.PROTECT,
        related_name="approvals",
        verbose_name=_("deposit"),
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("approver"),
    )
    type = models.CharField(max_length=16, choices=Type, verbose_name=_("type"))
    decision = models.CharField(max_length=16, choices=Decision, verbose_name=_("decision"))
    reason = models.TextField(blank=True, verbose_name=_("reason"))
    bank_reference = models.CharField(max_length=100, blank=True, verbose_name=_("bank reference"))
    # Bank type: whole shillings the bank says arrived (a different amount holds the deposit).
    amount_received_tzs = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("amount received (TZS)")
    )
    at = models.DateTimeField(default=now, verbose_name=_("time"))

    class Meta:
        verbose_name = _("deposit approval")
        verbose_name_plural = _("deposit approvals")
        constraints = [
            models.UniqueConstraint(fields=["deposit", "type"], name="approval_one_per_type"),
        ]
        indexes = [
            # Backstage search by the reference a bank gave when approving, before the
            # payment is confirmed (only then is it copied to the deposit's psp_reference).
            models.Index(fields=["bank_reference"], name="approval_bank_reference_idx"),
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
    provider = models.CharField(max_length=16, default="zenopay", verbose_name=_("provider"))
    kind = models.CharField(max_length=16, choices=Kind, verbose_name=_("kind"))
    order_id = models.CharField(max_length=100, blank=True, verbose_name=_("order ID"))
    deposit = models.ForeignKey(
        DepositRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("deposit"),
    )
    payment_status = models.CharField(max_length=32, blank=True, verbose_name=_("payment status"))
    # An order-status answer that plainly says ZenoPay holds nothing for the order ("not
    # found", empty data): with no other answer, ZenoPay never received the create.
    no_data = models.BooleanField(default=False, verbose_name=_("no data for the order"))
    body = models.TextField(blank=True, verbose_name=_("body"))  # raw, capped at 16 KB
    # Without secrets.
    headers = models.JSONField(default=dict, blank=True, verbose_name=_("headers"))
    remote_ip = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("remote IP"))
    # absent|valid|invalid
    key_status = models.CharField(max_length=16, blank=True, verbose_name=_("key status"))
    # The webhook_url token was valid.
    authenticated = models.BooleanField(default=False, verbose_name=_("authenticated"))
    http_status = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name=_("HTTP status")
    )
    outcome = models.CharField(
        max_length=16, choices=Outcome, default=Outcome.PENDING, verbose_name=_("outcome")
    )
    outcome_note = models.TextField(blank=True, verbose_name=_("outcome note"))
    received_at = models.DateTimeField(default=now, verbose_name=_("received at"))
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))

    class Meta:
        verbose_name = _("payment notification")
        verbose_name_plural = _("payment notifications")
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["deposit", "outcome"]),  # pending hints of a deposit
            # The Backstage list of notifications, newest first (one per webhook call and
            # order-status answer: the biggest table after the transitions).
            models.Index(fields=["received_at"], name="notification_received_idx"),
            # The dashboard's "last webhook" age: the newest of one kind.
            models.Index(fields=["kind", "received_at"], name="notification_kind_received_idx"),
        ]

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
    # "" when unknown.
    remote_ip = models.CharField(max_length=45, blank=True, verbose_name=_("remote IP"))
    minute = models.DateTimeField(verbose_name=_("minute"))  # the UTC minute the calls arrived in
    reason = models.CharField(max_length=8, choices=Reason, verbose_name=_("reason"))
    count = models.PositiveIntegerField(default=0, verbose_name=_("count"))

    class Meta:
        verbose_name = _("webhook refusal count")
        verbose_name_plural = _("webhook refusal counts")
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
    provider = models.CharField(max_length=16, default="zenopay", verbose_name=_("provider"))
    psp_reference = models.CharField(max_length=100, verbose_name=_("PSP reference"))
    # Whole shillings, as the PSP reported.
    amount_tzs = models.BigIntegerField(verbose_name=_("amount (TZS)"))
    phone = models.CharField(max_length=16, blank=True, verbose_name=_("phone"))
    channel = models.CharField(max_length=40, blank=True, verbose_name=_("channel"))
    source_deposit = models.ForeignKey(
        DepositRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orphans_seen",
        verbose_name=_("source deposit"),
    )
    reason = models.CharField(max_length=100, verbose_name=_("reason"))
    status = models.CharField(
        max_length=16, choices=Status, default=Status.UNMATCHED, verbose_name=_("status")
    )
    matched_deposit = models.OneToOneField(
        DepositRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orphan_attached",
        verbose_name=_("matched deposit"),
    )
    note = models.TextField(blank=True, verbose_name=_("note"))
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )

    class Meta:
        verbose_name = _("orphan payment")
        verbose_name_plural = _("orphan payments")
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
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="limit_events",
        verbose_name=_("user"),
    )
    kind = models.CharField(max_length=16, choices=Kind, verbose_name=_("kind"))
    # What the limit applies to (user id).
    subject = models.CharField(max_length=100, verbose_name=_("subject"))
    requested_tzs = models.BigIntegerField(verbose_name=_("requested (TZS)"))
    limit_tzs = models.BigIntegerField(verbose_name=_("limit (TZS)"))
    # Already used in the period.
    used_tzs = models.BigIntegerField(default=0, verbose_name=_("used (TZS)"))
    deposit = models.ForeignKey(
        DepositRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="limit_events",
        verbose_name=_("deposit"),
    )
    at = models.DateTimeField(default=now, verbose_name=_("time"))

    class Meta:
        verbose_name = _("limit event")
        verbose_name_plural = _("limit events")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.requested_tzs}/{self.limit_tzs}"
