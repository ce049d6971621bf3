"""The alerts no other task raises on its own (DESIGN §8), evaluated by
``reconciliation.tasks.alerts_check`` every minute, and the token-role holder check the indexer
runs after it stores role events.

Each condition opens its alert while it holds and resolves it when it clears; ``alert_raise``
logs one ERROR line per opening, so a condition that lasts does not flood the log."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Min

from core.alerts import (
    CAP_NEARLY_USED,
    MINT_FAILED_ACCUMULATING,
    MISSING_MINT,
    SAFE_DEPOSIT_WAITING,
    TASK_SILENT,
    UNEXPECTED_ROLE_HOLDER,
)
from core.clock import now, today_utc
from core.models import Alert, TaskHeartbeat
from core.services import alert_raise, alert_resolve
from deposits.models import DepositRequest
from minting.models import DailyIssuance
from minting.services.ledger import effective_cap
from reconciliation.selectors import missing_mints
from reconciliation.services.roles import role_holders_current, role_holders_expected

logger = logging.getLogger(__name__)

S = DepositRequest.Status
CAP_ALERT_PERCENT = 90
SAFE_WAIT_LIMIT = dt.timedelta(days=1)
SELF = "reconciliation.tasks.alerts_check"


def _hold(kind: str, *, key: str = "", detail: str | None) -> bool:
    """Open (detail given) or resolve (None) one alert; True when the condition holds."""
    if detail is None:
        alert_resolve(kind=kind, key=key)
        return False
    alert_raise(kind=kind, key=key, detail=detail)
    return True


def mint_failed_accumulating_check() -> bool:
    failed = DepositRequest.objects.filter(status=S.MINT_FAILED).count()
    threshold = settings.MINT_FAILED_ALERT_THRESHOLD
    detail = None
    if failed >= threshold:
        detail = f"{failed} deposits are in mint_failed (threshold {threshold})."
    return _hold(MINT_FAILED_ACCUMULATING, detail=detail)


def cap_nearly_used_check() -> bool:
    """Today's cap (UTC day) used at or above 90 %: reserved + issued + Safe-issued."""
    day = today_utc()
    issuance = DailyIssuance.objects.filter(day=day).first() or DailyIssuance(day=day)
    cap = effective_cap(issuance)
    used = issuance.reserved_tzs + issuance.issued_tzs + issuance.safe_issued_tzs
    detail = None
    if cap > 0 and used * 100 >= cap * CAP_ALERT_PERCENT:
        detail = f"{used:,} of {cap:,} TZS of the cap for {day.isoformat()} is used."
    return _hold(CAP_NEARLY_USED, detail=detail)


def tasks_silent_check() -> int:
    """A periodic task whose last heartbeat (finished, else started) is older than twice its
    interval. A task that never ran is left to the health checks ("never ran"): right after a
    deploy, a task with a long interval has simply not been due yet."""
    beats = {b.task_name: b for b in TaskHeartbeat.objects.all()}
    silent = 0
    for task, every in settings.BEAT_INTERVALS_S.items():
        if task == SELF:
            continue  # the check running now is not silent
        beat = beats.get(task)
        seen = beat and (beat.last_finished or beat.last_started)
        detail = None
        if seen and now() - seen > dt.timedelta(seconds=2 * every):
            age = int((now() - seen).total_seconds())
            detail = f"{task} last ran {age} s ago; it runs every {every} s."
        silent += _hold(TASK_SILENT, key=task, detail=detail)
    return silent


def safe_waiting_check() -> bool:
    """A deposit in ``mint_requires_safe`` for more than a day (its last change: the route)."""
    waiting = DepositRequest.objects.filter(status=S.MINT_REQUIRES_SAFE)
    oldest = waiting.aggregate(at=Min("updated_at"))["at"]
    detail = None
    if oldest is not None and now() - oldest > SAFE_WAIT_LIMIT:
        late = waiting.filter(updated_at__lt=now() - SAFE_WAIT_LIMIT).count()
        detail = (
            f"{late} deposit(s) have waited for the Safe for more than a day; the oldest "
            f"since {oldest:%Y-%m-%d %H:%M} UTC."
        )
    return _hold(SAFE_DEPOSIT_WAITING, detail=detail)


MISSING_SHOWN = 100  # missing mints alerted per run; more stay listed in Backstage


def missing_mints_check() -> int:
    """One alert per ``minted`` deposit whose claimed mint log the indexer passed without
    finding (keyed by the deposit, so each is its own ERROR line); resolved when the log is
    indexed again or the claim is superseded."""
    missing = {str(claim.deposit_id): claim for claim in missing_mints()[:MISSING_SHOWN]}
    for deposit_id, claim in missing.items():
        alert_raise(
            kind=MISSING_MINT,
            key=deposit_id,
            detail=(
                f"Deposit {deposit_id} is minted by tx={claim.tx_hash} log={claim.log_index}, "
                f"which the indexed chain does not hold."
            ),
            deposit_id=claim.deposit_id,
        )
    for key in Alert.objects.filter(kind=MISSING_MINT, resolved_at__isnull=True).values_list(
        "key", flat=True
    ):
        if key not in missing:
            alert_resolve(kind=MISSING_MINT, key=key)
    return len(missing)


def alerts_evaluate() -> dict[str, int]:
    """One alerts_check run: how many alerts of each kind hold now. The untracked-mint and
    role-holder alerts are raised by the indexer's run, the discrepancy by the snapshot."""
    return {
        MISSING_MINT: missing_mints_check(),
        MINT_FAILED_ACCUMULATING: int(mint_failed_accumulating_check()),
        CAP_NEARLY_USED: int(cap_nearly_used_check()),
        TASK_SILENT: tasks_silent_check(),
        SAFE_DEPOSIT_WAITING: int(safe_waiting_check()),
    }


# --- token role holders ------------------------------------------------------------------------
# Expected and current holders come from reconciliation.services.roles, which the roles report
# (manage.py token_roles, Backstage "Token roles") reads too: both name the same holders.


def token_role_holders_check(*, chain_id: int | None = None) -> int:
    """Open "unexpected token role holder" for each role held by an address outside the
    expected holders; resolve it when the role is revoked or the address becomes expected."""
    chain_id = chain_id or settings.CHAIN_ID
    expected = role_holders_expected()
    current = role_holders_current(chain_id=chain_id)
    unexpected = 0
    for (role, account), held in current.items():
        key = f"{role}:{account}"
        detail = None
        if held and account not in expected.get(role, set()):
            detail = f"{account} holds {role} on the token; it is not an expected holder."
        unexpected += _hold(UNEXPECTED_ROLE_HOLDER, key=key, detail=detail)
    # A pair no longer in the events (a reorg removed the grant) resolves too.
    for alert in Alert.objects.filter(kind=UNEXPECTED_ROLE_HOLDER, resolved_at__isnull=True):
        role, _, account = alert.key.partition(":")
        if not current.get((role, account)):
            alert_resolve(kind=UNEXPECTED_ROLE_HOLDER, key=alert.key)
    return unexpected
