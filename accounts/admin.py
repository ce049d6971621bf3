"""Plain admin registrations. KYC decisions and wallet verification go through services
(commands now, Backstage screens later), so those records are read-only here. Staff roles
(groups) and the staff/superuser flags are read-only too: a role is granted by four eyes
(``staff_role_grant``) and removed with ``staff_role_remove``, so no admin form can hand
anyone (least of all oneself) a role or a permission."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from accounts.models import KycCase, User, Wallet
from accounts.services import kyc_review
from core.exceptions import ServiceError


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(KycCase)
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
        return request.user.has_perm("accounts.change_kyccase")


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("address", "chain", "user", "verified_at", "verification_method")
    list_filter = ("chain", "verification_method")
    search_fields = ("address", "user__email")
    list_select_related = ("user",)


# Role permissions are granted by the apps' migrations (DESIGN §4); editing them here would
# widen a role without four eyes.
admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(DjangoGroupAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
