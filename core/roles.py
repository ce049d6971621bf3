"""Staff role names (Django groups created by the accounts app) and the one role check."""

from __future__ import annotations

BANK_ADMIN = "bank_admin"
PLATFORM_COMPLIANCE = "platform_compliance"
SUPER_ADMIN = "super_admin"
STAFF_ROLES = (BANK_ADMIN, PLATFORM_COMPLIANCE, SUPER_ADMIN)


def user_roles(user) -> set[str]:
    if user is None or not user.is_active or not user.pk:
        return set()
    return set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))


def user_has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
