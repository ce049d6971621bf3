"""The permission rule of every Backstage screen, and the read-only base of the ledgers.

A screen's view/add/change/delete permission is held by the staff roles whose group carries
the model permission (granted by each app's ``role_permissions`` data migration: the one
source), checked with ``core.roles.user_has_role``. Django's superuser flag grants nothing
here: a superuser without a role sees no screen and no button, as the services would refuse
them. Actions added later declare the roles of the service they call.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.models import Permission

from core.roles import STAFF_ROLES, user_has_role

_ROLE_PERMISSIONS = "_backstage_role_permissions"
_ROLE_CHECKS = "_backstage_role_checks"


def _role_permissions(request) -> dict[str, set[str]]:
    """Each staff role's model permissions ("app_label.codename"), read once per request: the
    index asks for four permissions of every model."""
    cached = getattr(request, _ROLE_PERMISSIONS, None)
    if cached is None:
        cached = {role: set() for role in STAFF_ROLES}
        rows = Permission.objects.filter(group__name__in=STAFF_ROLES).values_list(
            "group__name", "content_type__app_label", "codename"
        )
        for role, app_label, codename in rows:
            cached[role].add(f"{app_label}.{codename}")
        setattr(request, _ROLE_PERMISSIONS, cached)
    return cached


def request_has_role(request, roles) -> bool:
    """``user_has_role`` for the logged-in person, remembered for the rest of the request."""
    roles = tuple(sorted(set(roles)))
    if not roles:
        return False
    checks = request.__dict__.setdefault(_ROLE_CHECKS, {})
    if roles not in checks:
        checks[roles] = user_has_role(request.user, *roles)
    return checks[roles]


def roles_holding(request, permission: str) -> tuple[str, ...]:
    """The staff roles whose group carries ``permission`` ("app_label.codename")."""
    granted = _role_permissions(request)
    return tuple(role for role in STAFF_ROLES if permission in granted[role])


class RoleAdmin(admin.ModelAdmin):
    """A screen whose permissions come from the role groups (see the module docstring)."""

    def _role_may(self, request, verb: str) -> bool:
        opts = self.opts
        permission = f"{opts.app_label}.{verb}_{opts.model_name}"
        return request_has_role(request, roles_holding(request, permission))

    def has_view_permission(self, request, obj=None):
        return self._role_may(request, "view") or self._role_may(request, "change")

    def has_add_permission(self, request):
        return self._role_may(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._role_may(request, "change")

    def has_delete_permission(self, request, obj=None):
        return self._role_may(request, "delete")

    def has_module_permission(self, request):
        return self.has_view_permission(request)


class ReadOnlyAdmin(RoleAdmin):
    """A ledger or history: shown to the roles that may view it, changed by no one through
    Backstage (superusers included); only services write these rows."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
