"""People: users, KYC cases, wallets, staff roles, second-factor devices, API tokens.

KYC decisions and wallet verification go through services, so those records are read-only
here; their confirmation pages (KYC rejection with a reason, the maker's half of a manual
wallet verification) are in backstage/people.py. Staff roles (groups) and the staff/superuser
flags are read-only too: a role is granted by four eyes (``staff_role_grant``) and removed with
``staff_role_remove``, from the user's roles page, so no admin form can hand anyone (least of
all oneself) a role or a permission. API tokens are listed by key prefix and revoked there."""

from __future__ import annotations

from functools import partial

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import KycCase, User, Wallet
from accounts.services import KYC_REVIEWER_ROLES, WALLET_VERIFY_MANUAL_ROLES, kyc_review
from accounts.services.staff import STAFF_ROLE_ADMIN_ROLES
from accounts.services.tokens import API_TOKEN_ADMIN_ROLES
from backstage import people
from backstage.admin.base import ReadOnlyAdmin, RoleAdmin, request_has_role
from backstage.admin.site import site
from core.exceptions import ServiceError


def _page_urls(model_admin, pages) -> list:
    """Confirmation pages (backstage/people.py) under a model admin's URLs, named
    ``admin:<app>_<model>_<name>``, behind the Backstage login and second factor."""
    opts = model_admin.opts
    return [
        path(
            route,
            model_admin.admin_site.admin_view(partial(view, model_admin=model_admin)),
            name=f"{opts.app_label}_{opts.model_name}_{name}",
        )
        for route, view, name in pages
    ]


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User, site=site)
class UserAdmin(RoleAdmin, DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    ordering = ("email",)
    change_list_template = "backstage/people_user_changelist.html"  # + the API tokens link
    list_display = ("email", "full_name", "phone", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name", "phone")
    readonly_fields = (
        "last_login",
        "date_joined",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
    )
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("full_name", "phone")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )

    def get_list_display(self, request):
        if not self.has_roles_permission(request):
            return self.list_display
        return (*self.list_display, "roles_link")

    @admin.display(description=_("staff roles"))
    def roles_link(self, user: User):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:accounts_user_roles", args=[user.pk]), _("Roles")
        )

    def get_readonly_fields(self, request, obj=None):
        """The e-mail address is the account's recovery channel (password reset links go
        there): changed here, it would let one person reset another's password, enrol a new
        authenticator and act as them — a second pair of eyes included."""
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "email") if obj is not None else fields

    def get_urls(self):
        pages = [
            ("tokens/", people.api_tokens_page, "tokens"),
            ("<path:object_id>/token/revoke/", people.api_token_revoke_page, "token_revoke"),
            ("<path:object_id>/roles/", people.user_roles_page, "roles"),
        ]
        return [*_page_urls(self, pages), *super().get_urls()]

    def has_roles_permission(self, request) -> bool:
        """Ask for a role grant (four eyes) or remove a role: super admins (the service checks
        again, and refuses the grantee)."""
        return request_has_role(request, STAFF_ROLE_ADMIN_ROLES)

    def has_tokens_permission(self, request) -> bool:
        return request_has_role(request, API_TOKEN_ADMIN_ROLES)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_see_tokens": self.has_tokens_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def user_change_password(self, request, id, form_url=""):
        """Nobody sets another person's password here: whoever knew it could pass for them
        (a second pair of eyes included). People reset their own by e-mail link."""
        if str(id) != str(request.user.pk):
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)


@admin.register(KycCase, site=site)
class KycCaseAdmin(ReadOnlyAdmin):
    list_display = ("full_name", "user", "status", "submitted_at", "reviewed_by", "reviewed_at")
    list_filter = ("status",)
    search_fields = ("full_name", "national_id", "user__email")
    list_select_related = ("user", "reviewed_by")
    actions = ["approve_cases"]

    def get_urls(self):
        pages = [("<path:object_id>/reject/", people.kyc_reject_page, "reject")]
        return [*_page_urls(self, pages), *super().get_urls()]

    def get_list_display(self, request):
        if not self.has_review_permission(request):
            return self.list_display
        return (*self.list_display, "reject_link")

    @admin.display(description=_("reject"))
    def reject_link(self, case: KycCase):
        if case.status != KycCase.Status.PENDING:
            return ""
        url = reverse("admin:accounts_kyccase_reject", args=[case.pk])
        return format_html('<a href="{}">{}</a>', url, _("Reject with a reason"))

    @admin.action(description=_("Approve selected KYC cases"), permissions=["review"])
    def approve_cases(self, request, queryset):
        done = 0
        for case in queryset:
            try:
                kyc_review(case_id=case.pk, actor=request.user, decision=KycCase.Status.APPROVED)
            except ServiceError as exc:
                self.message_user(request, str(exc), level="error")
            else:
                done += 1
        self.message_user(request, _("%(n)d KYC case(s) approved.") % {"n": done})

    def has_review_permission(self, request):
        return request_has_role(request, KYC_REVIEWER_ROLES)


@admin.register(Wallet, site=site)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("address", "chain", "user", "verified_at", "verification_method")
    list_filter = ("chain", "verification_method")
    search_fields = ("address", "user__email")
    list_select_related = ("user",)

    def get_urls(self):
        pages = [("<path:object_id>/verify/", people.wallet_verify_page, "verify")]
        return [*_page_urls(self, pages), *super().get_urls()]

    def get_list_display(self, request):
        if not request_has_role(request, WALLET_VERIFY_MANUAL_ROLES):
            return self.list_display
        return (*self.list_display, "verify_link")

    @admin.display(description=_("manual verification"))
    def verify_link(self, wallet: Wallet):
        if wallet.verified_at is not None or wallet.closed_at is not None:
            return ""
        url = reverse("admin:accounts_wallet_verify", args=[wallet.pk])
        return format_html('<a href="{}">{}</a>', url, _("Ask for manual verification"))


@admin.register(Group, site=site)
class RoleGroupAdmin(ReadOnlyAdmin, DjangoGroupAdmin):
    """Role permissions are granted by the apps' migrations (DESIGN §4); editing them here
    would widen a role without four eyes."""


class _DeviceAdmin(RoleAdmin):
    """A lost authenticator: a super admin deletes the person's devices and they enrol again
    at their next login. No one adds or edits a device for someone else (that would take over
    their second factor), and the secret is never shown."""

    fields = ("user", "name", "confirmed")
    readonly_fields = fields
    list_display = ("user", "name", "confirmed")
    list_select_related = ("user",)
    search_fields = ("user__email",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


site.register(TOTPDevice, _DeviceAdmin)
site.register(StaticDevice, _DeviceAdmin)
