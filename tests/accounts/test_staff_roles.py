"""Staff roles: granted by four eyes (never to the maker or the checker), removed by one super
admin, and first handed out once by ``staff_bootstrap``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import User
from accounts.services.common import InvalidInput
from accounts.services.staff import (
    STAFF_ROLE_GRANT,
    staff_bootstrap,
    staff_role_grant_request,
    staff_role_remove,
)
from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.models import AdminAction, DualControlRequest
from core.roles import BANK_ADMIN, PLATFORM_COMPLIANCE, SUPER_ADMIN, user_roles
from core.services import dual_control_approve, dual_control_reject
from tests.factories import compliance_officer, customer, super_admin

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
EVIDENCE = "TICKET-42: joins the compliance team"


def _two_super_admins():
    return super_admin(), super_admin(email="rehema@ntzs.test", full_name="Rehema Ali")


def test_a_role_grant_needs_a_second_person():
    salim, rehema = _two_super_admins()
    amina = customer()

    request = staff_role_grant_request(
        email="Amina@ntzs.test", role=PLATFORM_COMPLIANCE, evidence=EVIDENCE, maker=salim
    )
    assert user_roles(amina) == set()  # nothing changes until a checker approves
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=salim)

    dual_control_approve(request_id=request.pk, checker=rehema, reason="checked the ticket")

    amina.refresh_from_db()
    assert user_roles(amina) == {PLATFORM_COMPLIANCE}
    assert amina.is_staff
    assert set(
        AdminAction.objects.filter(target_id=str(amina.pk)).values_list("action", "actor__email")
    ) == {
        (f"{STAFF_ROLE_GRANT}.request", salim.email),
        (f"{STAFF_ROLE_GRANT}.approve", rehema.email),
        ("staff_role.grant", rehema.email),
    }


def test_nobody_may_ask_for_a_role_for_themselves():
    salim, _rehema = _two_super_admins()

    with pytest.raises(PermissionRefused, match="their own"):
        staff_role_grant_request(email=salim.email, role=BANK_ADMIN, evidence=EVIDENCE, maker=salim)

    assert not DualControlRequest.objects.exists()


def test_the_grantee_cannot_be_the_checker():
    salim, rehema = _two_super_admins()
    neema = compliance_officer()
    request = staff_role_grant_request(
        email=rehema.email, role=PLATFORM_COMPLIANCE, evidence=EVIDENCE, maker=salim
    )

    with pytest.raises(PermissionRefused, match="their own"):
        dual_control_approve(request_id=request.pk, checker=rehema)
    with pytest.raises(PermissionRefused):  # a compliance officer may not decide role grants
        dual_control_approve(request_id=request.pk, checker=neema)
    with pytest.raises(PermissionRefused, match="their own"):
        dual_control_reject(request_id=request.pk, checker=rehema, reason="I decline")

    assert PLATFORM_COMPLIANCE not in user_roles(rehema)
    request.refresh_from_db()
    assert request.decision == DualControlRequest.Decision.PENDING


def test_only_super_admins_may_ask_for_a_role():
    neema = compliance_officer()
    customer()

    with pytest.raises(PermissionRefused):
        staff_role_grant_request(
            email="amina@ntzs.test", role=BANK_ADMIN, evidence=EVIDENCE, maker=neema
        )


def test_a_grant_needs_evidence_and_a_real_role():
    salim, _ = _two_super_admins()
    customer()

    with pytest.raises(InvalidInput):
        staff_role_grant_request(email="amina@ntzs.test", role=BANK_ADMIN, evidence="", maker=salim)
    with pytest.raises(InvalidInput):
        staff_role_grant_request(
            email="amina@ntzs.test", role="root", evidence=EVIDENCE, maker=salim
        )


def test_role_grant_through_the_commands():
    salim, rehema = _two_super_admins()
    customer()

    out = StringIO()
    call_command(
        "staff_role_grant",
        "--email",
        "amina@ntzs.test",
        "--role",
        BANK_ADMIN,
        "--evidence",
        EVIDENCE,
        "--actor",
        salim.email,
        stdout=out,
    )
    request_id = re.search(r"request ([0-9a-f-]{36})", out.getvalue()).group(1)
    with pytest.raises(CommandError, match="different person"):
        call_command("dual_control_approve", request_id, "--actor", salim.email)
    call_command("dual_control_approve", request_id, "--actor", rehema.email, stdout=out)

    assert user_roles(User.objects.get(email="amina@ntzs.test")) == {BANK_ADMIN}


def test_removal_is_done_by_one_super_admin_and_audited():
    salim, _rehema = _two_super_admins()
    neema = compliance_officer()

    staff_role_remove(
        email=neema.email, role=PLATFORM_COMPLIANCE, actor=salim, reason="left the company"
    )

    neema.refresh_from_db()
    assert user_roles(neema) == set()
    assert not neema.is_staff
    row = AdminAction.objects.get(action="staff_role.remove")
    assert (row.actor, row.target_id, row.params["role"]) == (
        salim,
        str(neema.pk),
        PLATFORM_COMPLIANCE,
    )


def test_removal_needs_a_super_admin_and_keeps_the_last_one():
    salim = super_admin()
    neema = compliance_officer()

    with pytest.raises(PermissionRefused):
        staff_role_remove(email=salim.email, role=SUPER_ADMIN, actor=neema, reason="coup")
    with pytest.raises(ConflictError, match="last super admin"):
        staff_role_remove(email=salim.email, role=SUPER_ADMIN, actor=salim, reason="leaving")
    assert user_roles(salim) == {SUPER_ADMIN}


def test_removal_by_command():
    salim, rehema = _two_super_admins()

    call_command(
        "staff_role_remove",
        "--email",
        rehema.email,
        "--role",
        SUPER_ADMIN,
        "--reason",
        "rotation",
        "--actor",
        salim.email,
    )

    assert user_roles(rehema) == set()


def test_staff_bootstrap_works_once_then_refuses(django_capture_on_commit_callbacks):
    existing = customer(email="amina@ntzs.test")

    with django_capture_on_commit_callbacks(execute=True):
        call_command("staff_bootstrap", "--email", "Amina@ntzs.test", "--email", "salim@ntzs.test")

    salim = User.objects.get(email="salim@ntzs.test")
    for person in (existing, salim):
        person.refresh_from_db()
        assert user_roles(person) == {SUPER_ADMIN}
        assert person.is_staff and person.is_active
    assert AdminAction.objects.filter(action="staff_role.bootstrap").count() == 2
    # The new account's password is unknown to everyone; its owner sets it from the e-mail.
    notices = {m.to[0]: m.body for m in mail.outbox}
    assert "/password-reset/" in notices["salim@ntzs.test"]
    assert "/password-reset/" not in notices["amina@ntzs.test"]

    with pytest.raises(CommandError, match="only works while no one holds a staff role"):
        call_command("staff_bootstrap", "--email", "x@ntzs.test", "--email", "y@ntzs.test")
    assert not User.objects.filter(email__in=["x@ntzs.test", "y@ntzs.test"]).exists()


def test_staff_bootstrap_refuses_when_any_staff_role_is_held():
    compliance_officer()

    with pytest.raises(ConflictError):
        staff_bootstrap(emails=["a@ntzs.test", "b@ntzs.test"])


@pytest.mark.parametrize(
    "emails",
    [
        ["a@ntzs.test"],
        ["a@ntzs.test", "A@ntzs.test"],
        ["a@ntzs.test", "b@ntzs.test", "c@ntzs.test"],
    ],
)
def test_staff_bootstrap_needs_exactly_two_different_addresses(emails):
    with pytest.raises(ServiceError, match="exactly two"):
        staff_bootstrap(emails=emails)
    assert not Group.objects.get(name=SUPER_ADMIN).user_set.exists()


@pytest.mark.django_db(transaction=True)
def test_staff_bootstrap_exits_non_zero_with_a_sentence_the_second_time():
    super_admin()
    db = connection.settings_dict
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run(  # our own interpreter and manage.py
        [
            sys.executable,
            "manage.py",
            "staff_bootstrap",
            "--email",
            "a@ntzs.test",
            "--email",
            "b@ntzs.test",
        ],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "only works while no one holds a staff role" in result.stderr
