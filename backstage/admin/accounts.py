"""People: users, KYC cases, wallets, staff roles, second-factor devices.

KYC decisions and wallet verification go through services, so those records are read-only
here. Staff roles (groups) and the staff/superuser flags are read-only too: a role is granted
by four eyes (``staff_role_grant``) and removed with ``staff_role_remove``, so no admin form
can hand anyone (least of all oneself) a role or a permission."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import KycCase, User, Wallet
from accounts.services import KYC_REVIEWER_ROLES, kyc_review
from backstage.admin.base import ReadOnlyAdmin, RoleAdmin, request_has_role
from backstage.admin.site import site
from core.exceptions import ServiceError


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

    def get_readonly_fields(self, request, obj=None):
        """The e-mail address is the account's recovery channel (password reset links go
        there): changed here, it would let one person reset another's password, enrol a new
        authenticator and act as them — a second pair of eyes included."""
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "email") if obj is not None else fields

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
