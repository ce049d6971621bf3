"""Banks and bank staff: super admins add and change them, compliance officers read them
(DESIGN §9). Every write goes through ``deposits.services.banks``; this module only maps the
form onto the service and shows its refusals. A bank is never deleted (deactivate it); a bank
staff row is removed through the service, which records it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect

from backstage.admin.base import RoleAdmin, request_has_role
from backstage.admin.site import site
from core.exceptions import ServiceError
from core.roles import BANK_ADMIN, SUPER_ADMIN
from deposits.models import Bank, BankStaff
from deposits.services.banks import (
    BankDetails,
    BankRefused,
    bank_create,
    bank_details_check,
    bank_staff_assign,
    bank_staff_remove,
    bank_update,
)

BANK_FIELDS = (
    "name",
    "status",
    "account_name",
    "account_number",
    "transfer_instructions",
    "is_zenopay_settlement",
)


def _details(data) -> BankDetails:
    return BankDetails(**{field: data.get(field) for field in BANK_FIELDS})


class BankForm(forms.ModelForm):
    class Meta:
        model = Bank
        fields = BANK_FIELDS

    def clean(self):
        """The service's own check, so its sentence stands next to the field before saving
        (and the database's constraint message is never what a person reads)."""
        data = super().clean()
        if self.errors:
            return data
        try:
            cleaned = bank_details_check(details=_details(data), bank_id=self.instance.pk)
        except BankRefused as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        else:
            data.update(vars(cleaned))
        return data


class _ServiceAdmin(RoleAdmin):
    """Super admins add and change (a role check, as the services check); a refusal raised
    while saving (a race the form could not see) is shown in the service's words."""

    def has_add_permission(self, request):
        return request_has_role(request, (SUPER_ADMIN,))

    def has_change_permission(self, request, obj=None):
        return request_has_role(request, (SUPER_ADMIN,))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:  # the admin's transaction is rolled back
            self.message_user(request, str(exc), level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(Bank, site=site)
class BankAdmin(_ServiceAdmin):
    form = BankForm
    list_display = ("name", "status", "is_zenopay_settlement", "account_name", "account_number")
    list_filter = ("status",)
    search_fields = ("name",)

    def has_delete_permission(self, request, obj=None):
        return False  # deposits and staff point at a bank for good: deactivate it instead

    def save_model(self, request, obj, form, change):
        details = _details(form.cleaned_data)
        if change:
            saved = bank_update(actor=request.user, bank_id=obj.pk, details=details)
        else:
            saved = bank_create(actor=request.user, details=details)
        obj.pk = saved.pk
        obj._state.adding = False


@admin.register(BankStaff, site=site)
class BankStaffAdmin(_ServiceAdmin):
    list_display = ("user", "bank")
    list_select_related = ("user", "bank")
    search_fields = ("user__email", "bank__name")

    def has_delete_permission(self, request, obj=None):
        return request_has_role(request, (SUPER_ADMIN,))

    def get_readonly_fields(self, request, obj=None):
        # A row is one person's: changing it moves them to another bank, never swaps people.
        return ("user",) if obj is not None else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":  # the service refuses anyone else too
            kwargs["queryset"] = (
                get_user_model()
                .objects.filter(groups__name=BANK_ADMIN, is_active=True)
                .order_by("email")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        staff = bank_staff_assign(actor=request.user, user_id=obj.user_id, bank_id=obj.bank_id)
        obj.pk = staff.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        bank_staff_remove(actor=request.user, user_id=obj.user_id)

    def delete_queryset(self, request, queryset):
        for staff in queryset:
            try:
                bank_staff_remove(actor=request.user, user_id=staff.user_id)
            except ServiceError as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
