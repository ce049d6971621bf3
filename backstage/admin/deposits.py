"""Deposits and their ledgers. Status changes happen only through deposits.services (the
action screens call them); nothing here edits a deposit. Bank admins see their own bank's
deposits only (``deposits_visible_to``), in the list, the detail page and search alike."""

from __future__ import annotations

import uuid
from functools import partial

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from backstage.admin.base import ReadOnlyAdmin, RoleAdmin, request_has_role
from backstage.admin.site import site
from backstage.deposit_actions import (
    BULK_ACTIONS,
    BULK_MAX,
    action_url,
    deposit_action_view,
    deposit_actions_offered,
    deposit_detail_facts,
)
from core.clock import now
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN
from deposits.models import (
    DepositApproval,
    DepositRequest,
    DepositTransition,
    LimitEvent,
    OrphanPayment,
    PaymentNotification,
    WebhookRefusalCount,
)
from deposits.selectors import deposits_visible_to

RAW_BODY_READERS = (PLATFORM_COMPLIANCE, SUPER_ADMIN)  # a notification's raw body: phones, names


class HeldFilter(admin.SimpleListFilter):
    title = _("hold")
    parameter_name = "held"

    def lookups(self, request, model_admin):
        return [("yes", _("held")), ("no", _("not held"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(hold_reason="")
        if self.value() == "no":
            return queryset.filter(hold_reason="")
        return queryset


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
        "age",
    )
    list_filter = (
        "status",
        "payment_provider",
        # Only the banks of the deposits this person may see (a bank admin: their own).
        ("bank", admin.RelatedOnlyFieldListFilter),
        HeldFilter,
        "created_at",
    )
    list_select_related = ("user", "bank")
    # The id is matched exactly (get_search_results); the rest as typed, in part.
    search_fields = (
        "user__email",
        "buyer_phone",
        "psp_reference",
        "transfer_reference",
        "=mint_tx_hash",
    )
    search_help_text = _(
        "Deposit id, customer email, phone, PSP or bank reference, transfer reference or "
        "mint transaction hash."
    )
    show_full_result_count = False  # a second COUNT(*) over every deposit on each page
    actions = ("retry_failed_mints", "cancel_unpaid_deposits")
    change_form_template = "backstage/deposit_change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "user",
                    "wallet",
                    "amount_tzs",
                    "status",
                    "status_reason",
                    "payment_provider",
                    "bank",
                    "buyer_phone",
                    "transfer_reference",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (
            _("Payment"),
            {
                "fields": (
                    "initiation",
                    "initiation_error",
                    "psp_reference",
                    "psp_channel",
                    "fiat_confirmed_at",
                    "fiat_confirmed_by",
                    "next_poll_at",
                    "last_checked_at",
                    "poll_attempts",
                    "cancelled_at",
                )
            },
        ),
        (_("Hold"), {"fields": ("hold_reason", "hold_details")}),
        (_("Minting"), {"fields": ("chain", "mint_tx_hash", "minted_at")}),
        (_("Request"), {"fields": ("idempotency_key", "request_fingerprint")}),
    )

    def get_queryset(self, request):
        return deposits_visible_to(user=request.user).select_related(
            "user", "bank", "wallet", "fiat_confirmed_by"
        )

    def get_search_results(self, request, queryset, search_term):
        """A pasted deposit id is looked up by its key (an index scan), not as text."""
        try:
            deposit_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=deposit_id), False

    def get_urls(self):
        view = self.admin_site.admin_view(partial(deposit_action_view, model_admin=self))
        return [
            path(
                "<uuid:object_id>/act/<slug:name>/",
                view,
                name="deposits_depositrequest_action",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(
                deposit_detail_facts(
                    deposit=obj, show_raw=request_has_role(request, RAW_BODY_READERS)
                )
            )
            context["deposit_actions"] = [
                (action, action_url(obj.pk, action.name))
                for action in deposit_actions_offered(request, obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("customer email"), ordering="user__email")
    def customer_email(self, deposit: DepositRequest) -> str:
        return deposit.user.email

    @admin.display(description=_("hold"), boolean=True, ordering="hold_reason")
    def held(self, deposit: DepositRequest) -> bool:
        return deposit.is_held

    @admin.display(description=_("age"), ordering="created_at")
    def age(self, deposit: DepositRequest) -> str:
        return timesince(deposit.created_at, now(), depth=1)

    def has_retry_mint_permission(self, request) -> bool:
        return request_has_role(request, (PLATFORM_COMPLIANCE, SUPER_ADMIN))

    def has_cancel_deposits_permission(self, request) -> bool:
        return request_has_role(request, (PLATFORM_COMPLIANCE, SUPER_ADMIN))

    @admin.action(description=_("Retry failed mints"), permissions=["retry_mint"])
    def retry_failed_mints(self, request, queryset):
        """A confirmation page first (what will be retried); then each deposit is retried on
        its own and its outcome shown, a refusal on one row not stopping the others."""
        return self._bulk(request, queryset, BULK_ACTIONS["retry_failed_mints"])

    @admin.action(description=_("Cancel unpaid deposits"), permissions=["cancel_deposits"])
    def cancel_unpaid_deposits(self, request, queryset):
        """Stale unpaid attempts, cancelled each on its own with one reason (the confirmation
        page asks for it); a refusal on one row does not stop the others."""
        return self._bulk(request, queryset, BULK_ACTIONS["cancel_unpaid_deposits"])

    def _bulk(self, request, queryset, bulk):
        deposits = list(queryset.order_by("created_at")[: BULK_MAX + 1])
        if len(deposits) > BULK_MAX:
            self.message_user(
                request,
                _("Select at most %(n)d deposits at once.") % {"n": BULK_MAX},
                messages.ERROR,
            )
            return None
        form = bulk.form(request.POST if request.POST.get("confirm") == "yes" else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": bulk.title,
            "bulk": bulk,
            "form": form,
            "deposits": deposits,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        if form.is_bound and form.is_valid():
            context["rows"] = bulk.run(request, deposits, form.cleaned_data)
        return TemplateResponse(request, "backstage/deposit_bulk.html", context)


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
