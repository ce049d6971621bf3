"""The ZenoPay sandbox's own state: the orders it was asked to push, and its knobs."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.clock import now


class SandboxOrder(models.Model):
    """One create call ZenoPay accepted: a USSD push waiting on the (simulated) phone."""

    class State(models.TextChoices):
        PENDING = "pending"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    order_id = models.CharField(max_length=128, unique=True)
    buyer_email = models.CharField(max_length=254)
    buyer_name = models.CharField(max_length=200)
    buyer_phone = models.CharField(max_length=16)  # as sent: local form 0XXXXXXXXX
    amount_tzs = models.BigIntegerField()  # whole shillings asked for; > 0
    webhook_url = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)  # echoed back in the webhook
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    paid_amount_tzs = models.BigIntegerField(null=True, blank=True)  # what the phone approved
    reference = models.CharField(max_length=32)  # ZenoPay's own reference, set at create
    transid = models.CharField(max_length=64, blank=True)  # the mobile-money transaction id
    channel = models.CharField(max_length=32, blank=True)
    msisdn = models.CharField(max_length=16, blank=True)  # 255XXXXXXXXX
    drop_webhook = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=now)
    decided_at = models.DateTimeField(null=True, blank=True)
    webhook_fired_at = models.DateTimeField(null=True, blank=True)
    webhook_response_status = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "completed", "failed", "cancelled"]),
                name="sandbox_order_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(amount_tzs__gt=0), name="sandbox_order_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(paid_amount_tzs__isnull=True) | Q(paid_amount_tzs__gt=0),
                name="sandbox_order_paid_amount_positive",
            ),
        ]
        indexes = [
            # The phone page: pending pushes, newest first.
            models.Index(fields=["state", "-created_at"], name="sandbox_order_state_created"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} ({self.state})"

    @property
    def masked_phone(self) -> str:
        """0712345678 → 07•• ••• 678: enough to recognise the phone on the page."""
        phone = self.buyer_phone
        return f"{phone[:2]}•• ••• {phone[-3:]}" if len(phone) >= 7 else "•••"


class SandboxKnobs(models.Model):
    """The one row of misbehaviour switches (id 1). Counters are consumed one per answer."""

    empty_data_polls = models.PositiveIntegerField(default=0)  # SUCCESS with data: []
    not_found_polls = models.PositiveIntegerField(default=0)  # FAIL "Order not found"
    server_error_polls = models.PositiveIntegerField(default=0)  # HTTP 500
    create_times_out = models.BooleanField(default=False)  # order recorded, then no answer
    reuse_transid = models.CharField(max_length=64, blank=True)  # for the next approval
    # ZenoPay's documented webhook (the default): only for COMPLETED, with order_id,
    # payment_status, reference and metadata, and no x-api-key. These three add what a real
    # ZenoPay has not been documented to send, to test that nothing relies on it.
    webhook_with_api_key = models.BooleanField(default=False)
    webhook_on_failure = models.BooleanField(default=False)  # FAILED/CANCELLED webhooks too
    webhook_with_payment_fields = models.BooleanField(default=False)  # transid, channel, amount

    class Meta:
        verbose_name_plural = "sandbox knobs"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="sandbox_knobs_single_row"),
        ]

    def __str__(self) -> str:
        return "ZenoPay sandbox knobs"
