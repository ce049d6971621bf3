"""Writes of the core app: audit, maker-checker, alerts, task heartbeats."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core.clock import now
from core.exceptions import ConflictError, NotFound, PermissionRefused, ServiceError
from core.models import AdminAction, Alert, DualControlRequest, RuntimeSetting, TaskHeartbeat
from core.roles import (
    BANK_ADMIN,
    PLATFORM_COMPLIANCE,
    SUPER_ADMIN,
    require_not_beneficiary,
    require_role,
    user_has_role,
)
from core.text import text_free_storable

logger = logging.getLogger(__name__)


def admin_action_record(
    *,
    actor,
    action: str,
    target_type: str,
    target_id: object,
    params: dict | None = None,
    outcome: str = "done",
    reason: str = "",
) -> AdminAction:
    return AdminAction.objects.create(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        params=params or {},
        outcome=outcome,
        reason=reason,
    )


# --- Maker-checker --------------------------------------------------------------------------


@dataclass(frozen=True)
class DualControlAction:
    """A four-eyes action. Apps register theirs (core never imports them).

    ``validate(params, target_id)`` runs when the maker asks and raises ServiceError;
    ``prepare(request)`` runs before the approval transaction and may call the network
    (never while a row is locked), returning a context; ``apply(request, checker, context)``
    runs inside the checker's approval transaction.
    """

    name: str
    target_type: str
    roles: tuple[str, ...]
    apply: Callable[[DualControlRequest, object, dict], None]
    validate: Callable[[dict, str], None] | None = None
    prepare: Callable[[DualControlRequest], dict] | None = None
    # The user id the action benefits (a deposit's or wallet's owner, a role's grantee), or
    # None; that person may be neither maker nor checker.
    beneficiary: Callable[[str], object | None] | None = None
    # The same, for an action whose beneficiary is named by its parameters rather than its
    # target (an orphan payment attached to a deposit benefits that deposit's owner).
    params_beneficiary: Callable[[dict], object | None] | None = None


_ACTIONS: dict[str, DualControlAction] = {}


def dual_control_action_register(action: DualControlAction) -> None:
    _ACTIONS[action.name] = action


def dual_control_actions_for(user) -> list[str]:
    """The names of the registered four-eyes actions whose roles ``user`` holds."""
    return [name for name, action in _ACTIONS.items() if user_has_role(user, *action.roles)]


def dual_control_action_get(name: str) -> DualControlAction:
    try:
        return _ACTIONS[name]
    except KeyError:
        raise ServiceError(f"Unknown four-eyes action {name!r}.") from None


def dual_control_actor_check(
    user, action: DualControlAction, verb: str, target_id: str, params: dict
) -> None:
    """The one rule of who may make or decide a four-eyes request: the action's roles, and
    never its beneficiary. Raises PermissionRefused in one sentence (the Backstage queue asks
    it too, so it offers a button only where the service would act)."""
    require_role(user, *action.roles, doing=f"{verb} {action.name}")
    doing = f"{verb} {action.name} of {action.target_type} {target_id}"
    if action.beneficiary is not None:
        require_not_beneficiary(user, action.beneficiary(target_id), doing=doing)
    if action.params_beneficiary is not None:
        require_not_beneficiary(user, action.params_beneficiary(params), doing=doing)


@transaction.atomic
def dual_control_request_make(
    *, action: str, target_id: object, params: dict, evidence: str, maker
) -> DualControlRequest:
    definition = dual_control_action_get(action)
    dual_control_actor_check(maker, definition, "request", str(target_id), params)
    if definition.validate is not None:
        definition.validate(params, str(target_id))
    try:
        with transaction.atomic():
            request = DualControlRequest.objects.create(
                action=action,
                target_type=definition.target_type,
                target_id=str(target_id),
                params=params,
                evidence=evidence,
                maker=maker,
            )
    except IntegrityError:
        raise ConflictError(
            f"A {action} request for {definition.target_type} {target_id} is already waiting "
            "for a checker; approve, reject or withdraw it first."
        ) from None
    admin_action_record(
        actor=maker,
        action=f"{action}.request",
        target_type=definition.target_type,
        target_id=target_id,
        params={"request_id": str(request.pk), **params},
        outcome="requested",
    )
    return request


def _pending_request_locked(request_id) -> DualControlRequest:
    try:
        return DualControlRequest.objects.select_for_update().get(pk=request_id)
    except (DualControlRequest.DoesNotExist, ValueError, ValidationError):
        raise NotFound(f"There is no four-eyes request {request_id}.") from None


REASON_MAX = 2_000  # characters of a four-eyes reason kept


def _reason_storable(reason: str) -> str:
    """A checker's or maker's reason as it may be stored and shown (no NUL or control
    characters): typed into a form, it reaches the database as typed otherwise."""
    return text_free_storable(reason, max_length=REASON_MAX)


def _decide(request: DualControlRequest, *, decision: str, checker, reason: str) -> None:
    updated = DualControlRequest.objects.filter(
        pk=request.pk, decision=DualControlRequest.Decision.PENDING
    ).update(decision=decision, checker=checker, checked_at=now(), reason=reason)
    if updated != 1:
        raise ConflictError(f"Request {request.pk} was already decided ({request.decision}).")
    request.refresh_from_db()


def dual_control_approve(*, request_id, checker, reason: str = "") -> DualControlRequest:
    """The checker's approval applies the change in the same transaction as the decision.

    The action's ``prepare`` (e.g. one more order-status query) runs first, outside any
    transaction; its answer is handed to ``apply``."""
    reason = _reason_storable(reason)
    try:
        snapshot = DualControlRequest.objects.get(pk=request_id)
    except (DualControlRequest.DoesNotExist, ValueError, ValidationError):
        raise NotFound(f"There is no four-eyes request {request_id}.") from None
    definition = dual_control_action_get(snapshot.action)
    dual_control_actor_check(checker, definition, "approve", snapshot.target_id, snapshot.params)
    if snapshot.maker_id == checker.pk:
        raise PermissionRefused(
            "The checker must be a different person from the maker; ask a colleague to approve."
        )
    context = definition.prepare(snapshot) if definition.prepare else {}
    return _dual_control_approve_atomic(
        request_id=request_id, checker=checker, reason=reason, context=context
    )


@transaction.atomic(durable=True)
def _dual_control_approve_atomic(
    *, request_id, checker, reason: str, context: dict
) -> DualControlRequest:
    request = _pending_request_locked(request_id)
    definition = dual_control_action_get(request.action)
    dual_control_actor_check(checker, definition, "approve", request.target_id, request.params)
    if request.decision != DualControlRequest.Decision.PENDING:
        raise ConflictError(f"Request {request.pk} was already decided ({request.decision}).")
    if request.maker_id == checker.pk:
        raise PermissionRefused(
            "The checker must be a different person from the maker; ask a colleague to approve."
        )
    if definition.validate is not None:  # the target may have moved since the request
        definition.validate(request.params, request.target_id)
    _decide(request, decision=DualControlRequest.Decision.APPROVED, checker=checker, reason=reason)
    definition.apply(request, checker, context)
    admin_action_record(
        actor=checker,
        action=f"{request.action}.approve",
        target_type=request.target_type,
        target_id=request.target_id,
        params={"request_id": str(request.pk)},
        outcome="approved",
        reason=reason,
    )
    return request


@transaction.atomic(durable=True)
def dual_control_reject(*, request_id, checker, reason: str) -> DualControlRequest:
    reason = _reason_storable(reason)
    if not reason.strip():
        raise ServiceError("A rejection needs a reason.")
    request = _pending_request_locked(request_id)
    definition = dual_control_action_get(request.action)
    dual_control_actor_check(checker, definition, "reject", request.target_id, request.params)
    if request.maker_id == checker.pk:
        raise PermissionRefused(
            "The checker must be a different person from the maker; the maker may withdraw."
        )
    _decide(request, decision=DualControlRequest.Decision.REJECTED, checker=checker, reason=reason)
    admin_action_record(
        actor=checker,
        action=f"{request.action}.reject",
        target_type=request.target_type,
        target_id=request.target_id,
        params={"request_id": str(request.pk)},
        outcome="rejected",
        reason=reason,
    )
    return request


@transaction.atomic(durable=True)
def dual_control_withdraw(*, request_id, maker, reason: str = "") -> DualControlRequest:
    reason = _reason_storable(reason)
    request = _pending_request_locked(request_id)
    if request.maker_id != maker.pk:
        raise PermissionRefused("Only the maker may withdraw a four-eyes request.")
    updated = DualControlRequest.objects.filter(
        pk=request.pk, decision=DualControlRequest.Decision.PENDING
    ).update(decision=DualControlRequest.Decision.WITHDRAWN, checked_at=now(), reason=reason)
    if updated != 1:
        raise ConflictError(f"Request {request.pk} was already decided ({request.decision}).")
    admin_action_record(
        actor=maker,
        action=f"{request.action}.withdraw",
        target_type=request.target_type,
        target_id=request.target_id,
        params={"request_id": str(request.pk)},
        outcome="withdrawn",
        reason=reason,
    )
    request.refresh_from_db()
    return request


# --- Runtime settings --------------------------------------------------------------------------


@transaction.atomic
def runtime_setting_set(
    *, key: str, value: str, actor, request: DualControlRequest
) -> tuple[str, str]:
    """Set (or, with ``value=""``, clear) the runtime override of ``key``, as the approved
    four-eyes ``request`` says; ``actor`` is its checker. Runs inside the approval's
    transaction; the row is locked so two approvals in a row leave the later one's value.
    Returns (previous value, new value); the caller audits."""
    if key not in RuntimeSetting.Key.values:
        raise ServiceError(f"{key} is not a setting that can be changed at runtime.")
    row, _created = RuntimeSetting.objects.select_for_update().get_or_create(key=key)
    previous = row.value
    RuntimeSetting.objects.filter(pk=key).update(
        value=value, changed_by=actor, changed_at=now(), request=request
    )
    return previous, value


# --- Alerts -----------------------------------------------------------------------------------


def alert_raise(
    *, kind: str, key: str = "", detail: str = "", deposit_id=None
) -> tuple[Alert, bool]:
    """Open an alert, or touch the open one. Returns (alert, opened_now); one ERROR line
    is logged only when the alert opens, so a condition that lasts does not flood logs.

    ``deposit_id`` names the one deposit the alert is about, if any: bank admins see only
    the alerts about their own bank's deposits (deposits.selectors.alerts_visible_to)."""
    with transaction.atomic():
        updated = Alert.objects.filter(kind=kind, key=key, resolved_at__isnull=True).update(
            last_seen=now(), detail=detail
        )
        if updated:
            return Alert.objects.get(kind=kind, key=key, resolved_at__isnull=True), False
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    kind=kind, key=key, detail=detail, deposit_id=deposit_id
                )
        except IntegrityError:  # another process opened it a moment ago
            return Alert.objects.get(kind=kind, key=key, resolved_at__isnull=True), False
    logger.error("Alert opened kind=%s key=%s: %s", kind, key, detail)
    return alert, True


def alert_resolve(*, kind: str, key: str = "") -> bool:
    resolved = Alert.objects.filter(kind=kind, key=key, resolved_at__isnull=True).update(
        resolved_at=now()
    )
    if resolved:
        logger.warning("Alert resolved kind=%s key=%s", kind, key)
    return bool(resolved)


ALERT_ACKNOWLEDGERS = (BANK_ADMIN, PLATFORM_COMPLIANCE, SUPER_ADMIN)  # DESIGN §9


def alert_acknowledge(*, alert_id, actor, note: str, visible_alerts) -> Alert:
    """Say "someone is on it" with a note: the alert stays open (its condition resolves it)
    and is listed as acknowledged, by whom and when; an ``AdminAction`` is written with it.

    ``visible_alerts`` is the queryset of alerts ``actor`` may see
    (deposits.selectors.alerts_visible_to: a bank admin only their bank's deposits'); core
    does not import deposits, so the caller passes it, and an alert outside it is "not
    found" as it would be on the screen."""
    require_role(actor, *ALERT_ACKNOWLEDGERS, doing=_("acknowledge an alert"))
    note = text_free_storable(note or "", max_length=REASON_MAX).strip()
    if not note:
        raise ServiceError(_("Write a note to acknowledge the alert: what you are doing about it."))
    with transaction.atomic(durable=True):
        try:
            alert = visible_alerts.select_for_update().get(pk=alert_id)
        except (Alert.DoesNotExist, ValueError, TypeError, ValidationError):
            raise NotFound(_("There is no alert %(id)s.") % {"id": alert_id}) from None
        if alert.resolved_at is not None:
            raise ConflictError(
                _("Alert %(id)s was resolved at %(at)s; a resolved alert needs no acknowledgement.")
                % {"id": alert.pk, "at": f"{alert.resolved_at:%Y-%m-%d %H:%M} UTC"}
            )
        if alert.acknowledged_at is not None:
            raise ConflictError(
                _("Alert %(id)s was already acknowledged by %(who)s at %(at)s.")
                % {
                    "id": alert.pk,
                    "who": alert.acknowledged_by,
                    "at": f"{alert.acknowledged_at:%Y-%m-%d %H:%M} UTC",
                }
            )
        at = now()
        updated = Alert.objects.filter(
            pk=alert.pk, resolved_at__isnull=True, acknowledged_at__isnull=True
        ).update(acknowledged_at=at, acknowledged_by=actor, acknowledgement_note=note)
        if updated != 1:  # unreachable under the row lock; the compare-and-set says why not
            raise ConflictError(_("Alert %(id)s changed meanwhile; reload it.") % {"id": alert.pk})
        admin_action_record(
            actor=actor,
            action="alert_acknowledge",
            target_type="alert",
            target_id=alert.pk,
            params={
                "kind": alert.kind,
                "key": alert.key,
                "deposit_id": str(alert.deposit_id) if alert.deposit_id else None,
            },
            outcome="acknowledged",
            reason=note,
        )
    logger.warning("Alert acknowledged kind=%s key=%s by=%s", alert.kind, alert.key, actor.pk)
    alert.refresh_from_db()
    return alert


# --- Task heartbeats ---------------------------------------------------------------------------


def task_heartbeat_started(*, task_name: str) -> None:
    TaskHeartbeat.objects.update_or_create(task_name=task_name, defaults={"last_started": now()})


def task_heartbeat_finished(*, task_name: str) -> None:
    TaskHeartbeat.objects.update_or_create(task_name=task_name, defaults={"last_finished": now()})


def task_heartbeat_failed(*, task_name: str, error: str) -> None:
    TaskHeartbeat.objects.update_or_create(
        task_name=task_name, defaults={"last_error": error[:2000], "last_error_at": now()}
    )


# --- Enqueueing by name ----------------------------------------------------------------------


def task_enqueue_on_commit(name: str, *args, countdown: float | None = None) -> None:
    """Send a Celery task by name once the current transaction commits.

    Lower apps start work in higher ones this way (DESIGN §3) without importing them. A name
    no installed app defines is a programming error: it raises in tests and is logged at
    ERROR elsewhere (the database row is still the work item, and a beat sweep finds it)."""

    def _send() -> None:
        app = current_app._get_current_object()
        if name not in _task_names(app):
            message = f"task {name} is not defined by any installed app; nothing was enqueued"
            if settings.PROFILE == "test":
                raise ServiceError(message)
            logger.error("%s; its beat sweep will find the work", message)
            return
        try:
            app.send_task(name, args=list(args), countdown=countdown)
        except Exception as exc:  # the broker is a hint, the row is the work
            logger.warning(
                "could not enqueue %s (%s); the beat sweep will pick it up",
                name,
                type(exc).__name__,
            )

    transaction.on_commit(_send)


def _task_names(app) -> set[str]:
    """The tasks the installed apps define. Imports their ``tasks`` modules directly, never
    through ``app.loader.import_default_modules()``: that sends Celery's ``import_modules``
    signal, whose Django fixup calls ``django.setup()`` again, which re-applies LOGGING and
    runs the system checks on every enqueue; in a worker's pool process the re-created console
    handler then writes to Celery's stdout proxy and every later log line of that process was
    silently dropped (issue 9, point 7)."""
    if not _tasks_imported:
        app.loader.autodiscover_tasks([config.name for config in apps.get_app_configs()])
        _tasks_imported.append(True)
    return set(app.tasks.keys())


_tasks_imported: list[bool] = []
