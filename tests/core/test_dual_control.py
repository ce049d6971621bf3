"""Maker-checker (core.DualControlRequest): four eyes, one pending request per target, and
the checker's approval applying the change in the same transaction."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from accounts.models import User
from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.models import AdminAction, DualControlRequest
from core.services import (
    DualControlAction,
    dual_control_action_register,
    dual_control_approve,
    dual_control_reject,
    dual_control_request_make,
    dual_control_withdraw,
)

APPLIED: list[str] = []


def _apply(request, checker, context):
    if request.params.get("explode"):
        raise ServiceError("The change could not be applied.")
    APPLIED.append(request.target_id)
    AdminAction.objects.create(
        actor=checker,
        action="test.applied",
        target_type="thing",
        target_id=request.target_id,
        outcome="done",
    )


@pytest.fixture(autouse=True)
def _test_action():
    APPLIED.clear()
    dual_control_action_register(
        DualControlAction(
            name="test_action",
            target_type="thing",
            roles=("platform_compliance",),
            apply=_apply,
        )
    )


def _officer(email, role="platform_compliance"):
    user = User.objects.create_user(email=email, password="x")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def maker(db):
    return _officer("maker@ntzs.test")


@pytest.fixture
def checker(db):
    return _officer("checker@ntzs.test")


def _make(maker, target="t1", **params):
    return dual_control_request_make(
        action="test_action",
        target_id=target,
        params=params,
        evidence="seen on dashboard",
        maker=maker,
    )


def test_checker_approval_applies_the_change_and_audits_both_people(maker, checker):
    request = _make(maker)
    approved = dual_control_approve(request_id=request.pk, checker=checker)
    assert approved.decision == "approved"
    assert approved.checker == checker
    assert APPLIED == ["t1"]
    actions = set(AdminAction.objects.values_list("action", "actor__email"))
    assert ("test_action.request", "maker@ntzs.test") in actions
    assert ("test_action.approve", "checker@ntzs.test") in actions


def test_maker_cannot_approve_their_own_request(maker):
    request = _make(maker)
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=maker)
    assert DualControlRequest.objects.get(pk=request.pk).decision == "pending"
    assert APPLIED == []


def test_database_refuses_checker_equal_to_maker_even_bypassing_the_service(maker):
    request = _make(maker)
    with pytest.raises(IntegrityError), transaction.atomic():
        DualControlRequest.objects.filter(pk=request.pk).update(checker=maker)


def test_checker_without_the_role_is_refused(maker, db):
    outsider = _officer("customer@ntzs.test", role=None)
    request = _make(maker)
    with pytest.raises(PermissionRefused, match="platform_compliance"):
        dual_control_approve(request_id=request.pk, checker=outsider)
    assert APPLIED == []


def test_maker_without_the_role_cannot_request(db):
    bank_admin = _officer("bank@ntzs.test", role="bank_admin")
    with pytest.raises(PermissionRefused):
        _make(bank_admin)
    assert DualControlRequest.objects.count() == 0


def test_only_one_pending_request_per_target(maker):
    _make(maker)
    with pytest.raises(ConflictError, match="already waiting"):
        _make(maker)
    assert DualControlRequest.objects.count() == 1


def test_a_failing_apply_rolls_back_the_approval(maker, checker):
    request = _make(maker, explode=True)
    with pytest.raises(ServiceError, match="could not be applied"):
        dual_control_approve(request_id=request.pk, checker=checker)
    request.refresh_from_db()
    assert request.decision == "pending"
    assert request.checker is None
    assert not AdminAction.objects.filter(action="test_action.approve").exists()


def test_a_decided_request_cannot_be_approved_again(maker, checker, db):
    request = _make(maker)
    dual_control_approve(request_id=request.pk, checker=checker)
    third = _officer("third@ntzs.test")
    with pytest.raises(ConflictError, match="already decided"):
        dual_control_approve(request_id=request.pk, checker=third)
    assert APPLIED == ["t1"]


def test_rejection_needs_a_reason_and_changes_nothing(maker, checker):
    request = _make(maker)
    with pytest.raises(ServiceError, match="reason"):
        dual_control_reject(request_id=request.pk, checker=checker, reason=" ")
    rejected = dual_control_reject(request_id=request.pk, checker=checker, reason="no proof")
    assert rejected.decision == "rejected"
    assert APPLIED == []


def test_only_the_maker_may_withdraw(maker, checker):
    request = _make(maker)
    with pytest.raises(PermissionRefused):
        dual_control_withdraw(request_id=request.pk, maker=checker)
    assert dual_control_withdraw(request_id=request.pk, maker=maker).decision == "withdrawn"
    _make(maker)  # the target is free again


def test_commands_approve_and_refuse_with_a_sentence(maker, checker):
    request = _make(maker)
    with pytest.raises(CommandError, match="different person"):
        call_command("dual_control_approve", str(request.pk), actor=maker.email)
    with pytest.raises(CommandError, match="no active user"):
        call_command("dual_control_approve", str(request.pk), actor="nobody@ntzs.test")
    with pytest.raises(CommandError, match="no four-eyes request"):
        call_command("dual_control_approve", "not-a-uuid", actor=checker.email)
    call_command("dual_control_approve", str(request.pk), actor=checker.email)
    assert APPLIED == ["t1"]


@pytest.fixture
def _action_with_beneficiaries():
    """A registered action whose target benefits ``OWNERS[target]`` and whose ``for`` param
    names another beneficiary (like an orphan attached to someone's deposit)."""
    dual_control_action_register(
        DualControlAction(
            name="test_owned",
            target_type="thing",
            roles=("platform_compliance",),
            apply=_apply,
            beneficiary=lambda target_id: OWNERS.get(target_id),
            params_beneficiary=lambda params: params.get("for"),
        )
    )


OWNERS: dict[str, object] = {}


@pytest.mark.usefixtures("_action_with_beneficiaries")
@pytest.mark.parametrize("via", ["target", "params"])
def test_the_beneficiary_is_neither_maker_nor_checker(maker, checker, via):
    owner = _officer("owner@ntzs.test", role="super_admin")
    owner.groups.add(Group.objects.get(name="platform_compliance"))
    OWNERS.clear()
    params = {}
    if via == "target":
        OWNERS["t9"] = owner.pk
    else:
        params = {"for": str(owner.pk)}

    with pytest.raises(PermissionRefused, match="it is their own"):
        dual_control_request_make(
            action="test_owned", target_id="t9", params=params, evidence="x", maker=owner
        )
    request = dual_control_request_make(
        action="test_owned", target_id="t9", params=params, evidence="x", maker=maker
    )
    with pytest.raises(PermissionRefused, match="it is their own"):
        dual_control_approve(request_id=request.pk, checker=owner)
    with pytest.raises(PermissionRefused, match="it is their own"):
        dual_control_reject(request_id=request.pk, checker=owner, reason="no")
    assert APPLIED == []
    dual_control_approve(request_id=request.pk, checker=checker)
    assert APPLIED == ["t9"]


def test_a_reason_typed_with_control_characters_is_stored_clean(maker, checker):
    """A NUL typed into the checker's form would make the database refuse the decision."""
    rejected = dual_control_reject(
        request_id=_make(maker, target="t7").pk, checker=checker, reason="wrong amount\x00\x07"
    )
    withdrawn = dual_control_withdraw(
        request_id=_make(maker, target="t8").pk, maker=maker, reason=" typo\x00 "
    )

    assert DualControlRequest.objects.get(pk=rejected.pk).reason == "wrong amount"
    assert DualControlRequest.objects.get(pk=withdrawn.pk).reason == "typo"
