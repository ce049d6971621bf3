"""Staff roles: who holds them, how they are granted (four eyes), removed (one person) and
first handed out (``staff_bootstrap``).

A grant is a ``core.DualControlRequest`` (action ``staff_role_grant``, target the grantee):
a super admin asks, a different super admin approves, and the grantee can be neither; so no
path lets one person give themselves a role. A removal takes access away, which must not wait
for a second person (like pausing the token). Every change writes an ``AdminAction``.
"""

from __future__ import annotations

import logging
import secrets
import uuid

from django.contrib.auth.models import Group
from django.core.mail import send_mail
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services.common import InvalidInput
from accounts.services.passwords import password_reset_link
from core.exceptions import ConflictError, NotFound
from core.models import DualControlRequest
from core.roles import STAFF_ROLES, SUPER_ADMIN, require_role, user_roles
from core.services import (
    DualControlAction,
    admin_action_record,
    dual_control_action_register,
    dual_control_request_make,
)

logger = logging.getLogger(__name__)

STAFF_ROLE_GRANT = "staff_role_grant"
STAFF_ROLE_ADMIN_ROLES = (SUPER_ADMIN,)  # who may ask for, approve or remove a role
STAFF_BOOTSTRAP_COUNT = 2
EVIDENCE_MIN_LENGTH = 10


def user_is_staff_account(user) -> bool:
    """A member of staff: holds a staff role, or has the Django staff/superuser flag."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_staff or user.is_superuser or user_roles(user))


def _normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def _user_by_email(email: str) -> User:
    user = User.objects.filter(email=_normalize_email(email)).first()
    if user is None:
        raise NotFound(_("There is no user with the email %(email)s.") % {"email": email})
    return user


def _check_role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise InvalidInput(
            _("%(role)s is not a staff role; choose one of %(roles)s.")
            % {"role": role, "roles": ", ".join(STAFF_ROLES)},
            field="role",
        )
    return role


# --- Grant (four eyes) -------------------------------------------------------------------------


def _grantee_id(target_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(target_id))
    except ValueError:
        return None


def _grant_validate(params: dict, target_id: str) -> None:
    role = _check_role(str(params.get("role", "")))
    pk = _grantee_id(target_id)
    grantee = User.objects.filter(pk=pk).first() if pk else None
    if grantee is None or not grantee.is_active:
        raise NotFound(_("There is no active user %(id)s to grant a role to.") % {"id": target_id})
    if grantee.groups.filter(name=role).exists():
        raise ConflictError(
            _("%(user)s already holds the role %(role)s.") % {"user": grantee, "role": role}
        )


def _grant_apply(request: DualControlRequest, checker, context: dict) -> None:
    role = request.params["role"]
    grantee = User.objects.select_for_update().get(pk=request.target_id)
    grantee.groups.add(Group.objects.get(name=role))
    if not grantee.is_staff:  # the Backstage (Django admin) opens only to is_staff users
        User.objects.filter(pk=grantee.pk).update(is_staff=True)
    admin_action_record(
        actor=checker,
        action="staff_role.grant",
        target_type="user",
        target_id=grantee.pk,
        params={"role": role, "request_id": str(request.pk), "maker": str(request.maker)},
        outcome="granted",
    )
    logger.warning(
        "Staff role granted user=%s role=%s maker=%s checker=%s",
        grantee.pk,
        role,
        request.maker_id,
        checker.pk,
    )


def staff_role_grant_request(
    *, email: str, role: str, evidence: str, maker: User
) -> DualControlRequest:
    """Ask for ``role`` to be granted to the user with ``email``; a second super admin (not
    the grantee) approves it with ``dual_control_approve``."""
    _check_role(role)
    evidence = (evidence or "").strip()
    if len(evidence) < EVIDENCE_MIN_LENGTH:
        raise InvalidInput(
            _(
                "Say why this person needs the role (a ticket or an approval reference, at least "
                "%(n)d characters)."
            )
            % {"n": EVIDENCE_MIN_LENGTH},
            field="evidence",
        )
    grantee = _user_by_email(email)
    return dual_control_request_make(
        action=STAFF_ROLE_GRANT,
        target_id=grantee.pk,
        params={"role": role},
        evidence=evidence,
        maker=maker,
    )


# --- Remove (one person) -----------------------------------------------------------------------


@transaction.atomic
def staff_role_remove(*, email: str, role: str, actor: User, reason: str) -> User:
    require_role(actor, *STAFF_ROLE_ADMIN_ROLES, doing=_("remove staff roles"))
    _check_role(role)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Give the reason for removing the role."), field="reason")
    # The role groups are locked so two removals cannot each leave "another" super admin.
    list(Group.objects.select_for_update().filter(name__in=STAFF_ROLES).order_by("name"))
    holder = _user_by_email(email)
    if not holder.groups.filter(name=role).exists():
        raise ConflictError(
            _("%(user)s does not hold the role %(role)s.") % {"user": holder, "role": role}
        )
    if (
        role == SUPER_ADMIN
        and not User.objects.filter(groups__name=SUPER_ADMIN, is_active=True)
        .exclude(pk=holder.pk)
        .exists()
    ):
        raise ConflictError(
            _(
                "%(user)s is the last super admin; grant the role to someone else first, or no "
                "one could grant roles any more."
            )
            % {"user": holder}
        )
    holder.groups.remove(Group.objects.get(name=role))
    still_staff = holder.groups.filter(name__in=STAFF_ROLES).exists()
    if not still_staff and holder.is_staff:
        User.objects.filter(pk=holder.pk).update(is_staff=False)
    admin_action_record(
        actor=actor,
        action="staff_role.remove",
        target_type="user",
        target_id=holder.pk,
        params={"role": role, "email": holder.email},
        outcome="removed",
        reason=reason,
    )
    logger.warning("Staff role removed user=%s role=%s by=%s", holder.pk, role, actor.pk)
    holder.refresh_from_db()
    return holder


# --- Bootstrap ---------------------------------------------------------------------------------


def _bootstrap_notice(user: User, *, created: bool) -> None:
    lines = [
        _("Hello,"),
        "",
        _("You are now a super admin of the nTZS back office (%(email)s).") % {"email": user.email},
    ]
    if created:
        lines += [
            "",
            _(
                "Choose your password with this link (valid for one hour; afterwards use "
                '"Forgot your password?" on the login page):'
            ),
            password_reset_link(user=user),
        ]
    lines += [
        "",
        _(
            "At your first Backstage login you will set up an authenticator app (a one-time "
            "code) and receive recovery codes; keep them somewhere safe."
        ),
    ]
    send_mail(_("nTZS: you are a super admin"), "\n".join(lines), None, [user.email])


@transaction.atomic
def staff_bootstrap(*, emails: list[str]) -> list[tuple[User, bool]]:
    """Make the first two super admins, only while no one holds any staff role.

    An address without an account gets one with a random password nobody knows, and an e-mail
    with a link to choose theirs: the ordinary "forgot your password" page keeps working for
    them if the link lapses (an inactive or unusable-password account would be shut out of it).
    Returns (user, created) pairs."""
    normalized = [_normalize_email(email) for email in emails]
    if len(normalized) != STAFF_BOOTSTRAP_COUNT or len(set(normalized)) != STAFF_BOOTSTRAP_COUNT:
        raise InvalidInput(
            _(
                "Give exactly two different e-mail addresses: the first two super admins must be "
                "two people, so each can check the other."
            ),
            field="email",
        )
    for email in normalized:
        if "@" not in email:
            raise InvalidInput(
                _("%(email)s is not an e-mail address.") % {"email": email}, field="email"
            )
    # Locking the role groups makes two bootstraps at once run one after the other.
    groups = {
        g.name: g
        for g in Group.objects.select_for_update().filter(name__in=STAFF_ROLES).order_by("name")
    }
    holders = User.objects.filter(groups__name__in=STAFF_ROLES).distinct().count()
    if holders:
        raise ConflictError(
            _(
                "staff_bootstrap only works while no one holds a staff role, and %(n)d people "
                "already do; a super admin grants roles with staff_role_grant (two people)."
            )
            % {"n": holders}
        )
    result = []
    for email in normalized:
        user = User.objects.filter(email=email).first()
        created = user is None
        if created:
            user = User.objects.create_user(
                email=email, password=secrets.token_urlsafe(32), is_staff=True
            )
        elif not user.is_active:
            raise ConflictError(
                _("The account %(email)s is deactivated; reactivate it or choose another person.")
                % {"email": email}
            )
        user.groups.add(groups[SUPER_ADMIN])
        if not user.is_staff:
            User.objects.filter(pk=user.pk).update(is_staff=True)
            user.is_staff = True
        result.append((user, created))
    for user, created in result:
        other = next(u for u, _c in result if u.pk != user.pk)
        admin_action_record(
            actor=user,
            action="staff_role.bootstrap",
            target_type="user",
            target_id=user.pk,
            params={
                "role": SUPER_ADMIN,
                "email": user.email,
                "with": other.email,
                "account_created": created,
            },
            outcome="granted",
            reason="staff_bootstrap: the first two super admins (no staff role was held)",
        )
        transaction.on_commit(lambda u=user, c=created: _bootstrap_notice(u, created=c))
    logger.warning("Staff bootstrap: super admins %s", ", ".join(u.email for u, _c in result))
    return result


def register_staff_dual_control_actions() -> None:
    dual_control_action_register(
        DualControlAction(
            name=STAFF_ROLE_GRANT,
            target_type="user",
            roles=STAFF_ROLE_ADMIN_ROLES,
            apply=_grant_apply,
            validate=_grant_validate,
            beneficiary=_grantee_id,  # the grantee is neither maker nor checker
        )
    )
