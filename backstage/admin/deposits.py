"""Deposits and their ledgers. Status changes happen only through deposits.services (the
action screens call them); nothing here edits a deposit. Bank admins see their own bank's
deposits only (``deposits_visible_to``), in the list, the detail page and search alike.

The deposit list stays fast with a million deposits (issue 13; ``make bench-backstage``):
every read it makes is served by an index of deposits/models.py — no full count (the
paginator counts at most COUNT_LIMIT + 1 rows and says "more than"), sorting only by the
indexed columns, no facet counts, the bank filter's choices probed per bank, and a search
that recognises what was typed and matches it exactly."""

from __future__ import annotations

import operator
import re
import uuid
from functools import cached_property, partial, reduce

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import User
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
from deposits.exceptions import InvalidDeposit
from deposits.models import (
    Bank,
    DepositApproval,
    DepositRequest,
    DepositTransition,
    LimitEvent,
    OrphanPayment,
    PaymentNotification,
    WebhookRefusalCount,
)
from deposits.phones import phone_normalize_tz
from deposits.selectors import deposits_visible_to
from minting.models import MintAttempt

RAW_BODY_READERS = (PLATFORM_COMPLIANCE, SUPER_ADMIN)  # a notification's raw body: phones, names
COUNT_LIMIT = 10_000  # the deposit list counts this many rows at most, then says "more than"
SEARCH_PEOPLE_MAX = 100  # customers an e-mail prefix or phone may name in one search
_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_REFERENCE = re.compile(r"[^\s]{3,100}")  # a reference is one word
_EMAIL_PART = re.compile(r"[\w.+-]+(@[\w.-]*)?")  # an e-mail address or its beginning


class BoundedCountPaginator(Paginator):
    """Counts at most ``COUNT_LIMIT + 1`` rows: the list of a million deposits shows its first
    pages and "more than 10,000" instead of counting them all on every page view."""

    limit = COUNT_LIMIT

    @cached_property
    def count(self) -> int:
        # Neither the joins nor the order change how many rows there are, and without them
        # the database counts off the narrowest index.
        return self.object_list.select_related(None).order_by()[: self.limit + 1].count()

    @property
    def more_than_limit(self) -> bool:
        return self.count > self.limit

    @property
    def limit_shown(self) -> str:
        return f"{self.limit:,}"


class VisibleBankFilter(admin.RelatedFieldListFilter):
    """The banks of the deposits this person may see (a bank admin: their own), each found by
    one index probe instead of a DISTINCT over every deposit."""

    def field_choices(self, field, request, model_admin):
        visible = deposits_visible_to(user=request.user).filter(bank=OuterRef("pk"))
        return [
            (bank.pk, str(bank))
            for bank in Bank.objects.filter(Exists(visible)).order_by("name").only("id", "name")
        ]


def deposit_search_filter(term: str) -> Q | None:
    """What a typed search term names, as an exact, indexed match (None: nothing can match).

    A deposit id; a mint transaction hash (the deposit's, or any attempt's); an e-mail or its
    beginning (the customer's deposits); a Tanzanian phone number in any usual form (the
    paying number or the customer's); a reference as given — ZenoPay transid, a bank's
    reference (on the deposit once confirmed, on the bank's approval before), or the transfer
    reference the customer wrote. A term may be several of these (digits: a phone and a
    reference); each kind it may be is looked up."""
    term = term.strip()
    if not term:
        return None
    try:
        return Q(pk=uuid.UUID(term))
    except ValueError:
        pass
    if _TX_HASH.fullmatch(term):
        hashes = {term, term.lower()}
        attempts = MintAttempt.objects.filter(tx_hash__in=hashes).values_list(
            "mint_transaction__deposit_id", flat=True
        )
        return Q(mint_tx_hash__in=hashes) | Q(pk__in=[pk for pk in attempts if pk])
    clauses: list[Q] = []
    people: list = []
    phone = _phone_or_none(term)
    if phone:
        clauses.append(Q(buyer_phone=phone))
        people += User.objects.filter(phone=phone).values_list("pk", flat=True)[:SEARCH_PEOPLE_MAX]
    if _REFERENCE.fullmatch(term):
        references = {term, term.upper()}
        clauses += [Q(psp_reference__in=references), Q(transfer_reference=term.upper())]
        approved = DepositApproval.objects.filter(bank_reference__in=references)
        deposit_ids = list(approved.values_list("deposit_id", flat=True)[:SEARCH_PEOPLE_MAX])
        if deposit_ids:
            clauses.append(Q(pk__in=deposit_ids))
        if _EMAIL_PART.fullmatch(term):
            # E-mails are stored in lower case; a prefix reads the e-mail index's pattern ops.
            people += User.objects.filter(email__startswith=term.lower()).values_list(
                "pk", flat=True
            )[:SEARCH_PEOPLE_MAX]
    if people:
        clauses.append(Q(user_id__in=people))
    return reduce(operator.or_, clauses) if clauses else None


def _phone_or_none(term: str) -> str | None:
    try:
        return phone_normalize_tz(term)
    except InvalidDeposit:
        return None


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
        ("bank", VisibleBankFilter),
        HeldFilter,
        "created_at",
    )
    list_select_related = ("user", "bank")
    # Only the orders an index serves (a click on another column would sort every deposit).
    sortable_by = ("id", "created_at", "age")
    # get_search_results recognises the term; search_fields only turns the search box on.
    search_fields = ("=id",)
    search_help_text = _(
        "A deposit id, mint transaction hash, customer e-mail (or its beginning), phone "
        "number, PSP or bank reference, or transfer reference, exactly as written."
    )
    show_full_result_count = False  # a second COUNT(*) over every deposit on each page
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over every deposit
    paginator = BoundedCountPaginator
    # Rendering the rows is most of the page's time once every read is indexed.
    list_per_page = 50
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
        """The term is recognised and matched exactly, by index (``deposit_search_filter``);
        never a substring search over every deposit and its customer. The queryset is
        already what this person may see, so a bank admin finds their own bank's only."""
        if not search_term.strip():
            return queryset, False
        matches = deposit_search_filter(search_term)
        return (queryset.none() if matches is None else queryset.filter(matches)), False

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

    def action_checkbox(self, obj):
        """Django's row checkbox, written directly: rendering a widget template for every row
        was a fifth of the list's time."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )

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
    paginator = BoundedCountPaginator


@admin.register(DepositApproval, site=site)
class DepositApprovalAdmin(ReadOnlyAdmin):
    list_display = ("deposit_id", "type", "decision", "approver", "bank_reference", "at")
    list_filter = ("type", "decision")
    list_select_related = ("approver",)
    show_full_result_count = False
    paginator = BoundedCountPaginator


@admin.register(PaymentNotification, site=site)
class PaymentNotificationAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "kind", "order_id", "payment_status", "outcome")
    list_filter = ("kind", "outcome")
    search_fields = ("order_id",)
    show_full_result_count = False
    paginator = BoundedCountPaginator


@admin.register(LimitEvent, site=site)
class LimitEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "subject", "requested_tzs", "limit_tzs", "used_tzs")
    list_filter = ("kind",)


@admin.register(WebhookRefusalCount, site=site)
class WebhookRefusalCountAdmin(ReadOnlyAdmin):
    list_display = ("minute", "remote_ip", "reason", "count")
    list_filter = ("reason",)
