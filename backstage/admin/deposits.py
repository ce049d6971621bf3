"""Deposits and their ledgers. Status changes happen only through deposits.services (the
action screens call them); nothing here edits a deposit. Bank admins see their own bank's
deposits only (``deposits_visible_to``), in the list, the detail page and search alike."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from backstage.admin.base import ReadOnlyAdmin, RoleAdmin
from backstage.admin.site import site
from deposits.models import (
    Bank,
    BankStaff,
    DepositApproval,
    DepositRequest,
    DepositTransition,
    LimitEvent,
    OrphanPayment,
    PaymentNotification,
    WebhookRefusalCount,
)
from deposits.selectors import deposits_visible_to


@admin.register(DepositRequest, site=site)
class DepositRequestAdmin(RoleAdmin):
    list_display = (
        "id",
        "created_at",
        "customer_email",
        "amount_tzs",
        "payment_provider",
        "bank",
        "status",
        "held",
    )
    list_select_related = ("user", "bank")
    search_fields = ("user__email", "psp_reference", "transfer_reference", "buyer_phone")
    show_full_result_count = False  # a second COUNT(*) over every deposit on each page

    def get_queryset(self, request):
        return deposits_visible_to(user=request.user).select_related("user", "bank")

    @admin.display(description=_("customer email"), ordering="user__email")
    def customer_email(self, deposit: DepositRequest) -> str:
        return deposit.user.email

    @admin.display(description=_("hold"), boolean=True, ordering="hold_reason")
    def held(self, deposit: DepositRequest) -> bool:
        return deposit.is_held


@admin.register(Bank, site=site)
class BankAdmin(RoleAdmin):
    list_display = ("name", "status", "is_zenopay_settlement", "account_name", "account_number")


@admin.register(BankStaff, site=site)
class BankStaffAdmin(RoleAdmin):
    list_display = ("user", "bank")
    list_select_related = ("user", "bank")


@admin.register(OrphanPayment, site=site)
class OrphanPaymentAdmin(RoleAdmin):
    list_display = ("psp_reference", "amount_tzs", "phone", "reason", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("psp_reference", "phone")


# --- Ledgers: read-only for everyone -----------------------------------------------------------


@admin.register(DepositTransition, site=site)
class DepositTransitionAdmin(ReadOnlyAdmin):
    list_display = ("deposit_id", "from_status", "to_status", "source", "actor", "at")
    list_filter = ("source", "to_status")
    list_select_related = ("actor",)
    ordering = ("-at", "-id")
    show_full_result_count = False


@admin.register(DepositApproval, site=site)
class DepositApprovalAdmin(ReadOnlyAdmin):
    list_display = ("deposit_id", "type", "decision", "approver", "bank_reference", "at")
    list_filter = ("type", "decision")
    list_select_related = ("approver",)


@admin.register(PaymentNotification, site=site)
class PaymentNotificationAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "kind", "order_id", "payment_status", "outcome")
    list_filter = ("kind", "outcome")
    search_fields = ("order_id",)
    show_full_result_count = False


@admin.register(LimitEvent, site=site)
class LimitEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "subject", "requested_tzs", "limit_tzs", "used_tzs")
    list_filter = ("kind",)


@admin.register(WebhookRefusalCount, site=site)
class WebhookRefusalCountAdmin(ReadOnlyAdmin):
    list_display = ("minute", "remote_ip", "reason", "count")
    list_filter = ("reason",)
