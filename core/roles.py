"""Staff role names (Django groups created by the accounts app), the one role check
(``require_role``) and the one beneficiary rule (``require_not_beneficiary``)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from core.exceptions import PermissionRefused

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


def require_role(actor, *roles: str, doing: str) -> None:
    """The one role check of every service: refuse, in one sentence, an actor who holds none
    of ``roles``."""
    if not user_has_role(actor, *roles):
        raise PermissionRefused(
            _("%(actor)s may not %(doing)s: it needs one of the roles %(roles)s.")
            % {"actor": actor, "doing": doing, "roles": ", ".join(roles)}
        )


def require_not_beneficiary(actor, beneficiary_id, *, doing: str) -> None:
    """The beneficiary never acts (DESIGN §9, invariant 12): no approval, maker or checker of
    an action may be the person it benefits (the deposit's owner, the wallet's owner, the
    grantee of a role), whatever roles they hold."""
    if actor is None or beneficiary_id is None:
        return
    if str(actor.pk) == str(beneficiary_id):  # a UUID or its text, as hooks return either
        raise PermissionRefused(
            _("%(actor)s may not %(doing)s: it is their own; another member of staff must do it.")
            % {"actor": actor, "doing": doing}
        )
