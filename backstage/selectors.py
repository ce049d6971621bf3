"""Reads of the Backstage home (the dashboard, DESIGN §8, §9): what is waiting, what is stuck,
how much of today's cap is used, whether minting runs, and the last 30 days.

Every figure comes from the database, the shared circuit breaker (Redis) and the last stored
minter check: nothing here calls the chain or writes a row, so the page answers while the
RPC node is down and a flood of views costs the provider nothing.

Built to stay fast with a million deposits: the queue counts only the open (non-terminal)
statuses, grouped in SQL; the oldest ages are one ordered row each; the 30-day chart is one
grouped query over a created_at range. The charts aggregate live (no per-day summary table):
the window holds about 82,000 deposits at that volume, which PostgreSQL groups in one pass."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max
from django.db.models.functions import TruncDate

from core.clock import today_utc
from core.money import units_whole_ntzs
from deposits.models import DepositRequest, DepositTransition, OrphanPayment, PaymentNotification
from deposits.selectors import deposits_visible_to
from minting.breaker import rpc_breaker
from minting.models import DailyIssuance, MinterCheckRecord, SignerAccount
from minting.services.ledger import effective_cap, minter_signer
from reconciliation.models import SupplySnapshot
from reconciliation.selectors import Armed, untracked_alarm_armed

S = DepositRequest.Status
# The statuses a deposit can still leave: the dashboard's queue. The terminal ones (minted,
# cancelled, rejected, refunded) hold nearly every row and are never counted here.
OPEN_STATUSES = (
    S.SUBMITTED,
    S.MINT_PENDING,
    S.MINT_PROCESSING,
    S.MINT_FAILED,
    S.MINT_REQUIRES_SAFE,
)
CHART_DAYS = 30
# Today's cap bar: green below 70 %, amber from 70 % up to 90 %, red above 90 %.
CAP_AMBER_PERCENT = 70
CAP_RED_PERCENT = 90


@dataclass(frozen=True)
class QueueFigures:
    counts: dict[str, int]  # every open status (0 included), in OPEN_STATUSES order
    held: int  # deposits with a hold, whatever their status
    oldest_unpaid_at: dt.datetime | None  # created_at of the oldest submitted, unheld deposit
    oldest_safe_at: dt.datetime | None  # when the longest-waiting Safe-lane deposit entered it


def dashboard_queue(*, user) -> QueueFigures:
    """The deposits ``user`` may see (a bank admin: their bank's), by open status."""
    deposits = deposits_visible_to(user=user)
    grouped = dict(
        deposits.filter(status__in=OPEN_STATUSES)
        .order_by()  # the model's ordering would join the GROUP BY
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    oldest_unpaid_at = (
        deposits.filter(status=S.SUBMITTED, hold_reason="")
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    # Since it last entered the Safe lane (a hold set or cleared is a transition to the same
    # status, and does not restart the wait).
    oldest_safe_at = (
        DepositTransition.objects.filter(
            deposit__in=deposits.filter(status=S.MINT_REQUIRES_SAFE).order_by().values("pk"),
            to_status=S.MINT_REQUIRES_SAFE,
        )
        .exclude(from_status=S.MINT_REQUIRES_SAFE)
        .values("deposit_id")
        .annotate(entered=Max("at"))
        .order_by("entered")
        .values_list("entered", flat=True)
        .first()
    )
    return QueueFigures(
        counts={status: grouped.get(status, 0) for status in OPEN_STATUSES},
        held=deposits.exclude(hold_reason="").count(),
        oldest_unpaid_at=oldest_unpaid_at,
        oldest_safe_at=oldest_safe_at,
    )


def orphans_open_count() -> int:
    """Payments that credited no deposit and wait for a person (attach or dismiss)."""
    return OrphanPayment.objects.filter(status=OrphanPayment.Status.UNMATCHED).count()


def cap_level(*, used_tzs: int, cap_tzs: int) -> str:
    """The colour of a day's use of its cap, in whole-number arithmetic (no float decides
    it): "red" above 90 %, "amber" from 70 %, "green" below. A cap of 0 is red whatever is
    used: nothing more can be minted today."""
    if cap_tzs <= 0:
        return "red"
    if used_tzs * 100 > CAP_RED_PERCENT * cap_tzs:
        return "red"
    if used_tzs * 100 >= CAP_AMBER_PERCENT * cap_tzs:
        return "amber"
    return "green"


@dataclass(frozen=True)
class CapFigures:
    day: dt.date
    cap_tzs: int  # the effective cap: the day's override, else DAILY_ISSUANCE_CAP_TZS
    overridden: bool
    reserved_tzs: int
    issued_tzs: int
    safe_issued_tzs: int

    @property
    def used_tzs(self) -> int:
        return self.reserved_tzs + self.issued_tzs + self.safe_issued_tzs

    @property
    def percent_tenths(self) -> int:
        """Used as a share of the cap in tenths of a percent, rounded down (912 = 91.2 %);
        a cap of 0 reads as full."""
        if self.cap_tzs <= 0:
            return 1000
        return self.used_tzs * 1000 // self.cap_tzs

    @property
    def level(self) -> str:
        return cap_level(used_tzs=self.used_tzs, cap_tzs=self.cap_tzs)


def dashboard_cap(*, day: dt.date | None = None) -> CapFigures:
    """Today's (UTC) cap and what is reserved and issued against it, from DailyIssuance."""
    day = day or today_utc()
    issuance = DailyIssuance.objects.filter(day=day).first() or DailyIssuance(day=day)
    return CapFigures(
        day=day,
        cap_tzs=effective_cap(issuance),
        overridden=issuance.cap_override_tzs is not None,
        reserved_tzs=issuance.reserved_tzs,
        issued_tzs=issuance.issued_tzs,
        safe_issued_tzs=issuance.safe_issued_tzs,
    )


@dataclass(frozen=True)
class MintingFigures:
    sending_enabled: bool | None  # None: no signer account yet
    waiting_reason: str  # why the worker is not minting ("" when its pre-flight passed)
    circuit: str  # closed | open | half_open
    check: MinterCheckRecord | None  # the last stored check_minter result

    @property
    def gas_low(self) -> bool:
        """The stored gas balance is below MINTER_MIN_GAS_ETH (False when unknown)."""
        balance = self.check.gas_balance_wei if self.check and self.check.reachable else None
        return balance is not None and int(balance) < settings.MINTER_MIN_GAS_WEI


def dashboard_minting() -> MintingFigures:
    """The minting page's key figures: the sending switch, the worker's waiting reason, the
    circuit, and the minter's role and gas as last checked by ``check_minter``."""
    # The configured key's row: after a key rotation the old key's (stopped) row remains.
    signer = (minter_signer() if settings.MINTER_PRIVATE_KEY else None) or (
        SignerAccount.objects.filter(chain_id=settings.CHAIN_ID).first()
    )
    return MintingFigures(
        sending_enabled=signer.sending_enabled if signer else None,
        waiting_reason=signer.preflight_reason if signer and not signer.preflight_ok else "",
        circuit=rpc_breaker().state(),
        check=MinterCheckRecord.objects.filter(name="minter").first(),
    )


def last_webhook_at() -> dt.datetime | None:
    """When ZenoPay's last webhook call arrived (None: never)."""
    return (
        PaymentNotification.objects.filter(kind=PaymentNotification.Kind.WEBHOOK)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )


def chart_days(*, today: dt.date | None = None, days: int = CHART_DAYS) -> list[dt.date]:
    """The last ``days`` UTC days, oldest first, today included."""
    today = today or today_utc()
    return [today - dt.timedelta(days=back) for back in range(days - 1, -1, -1)]


def deposits_by_day(*, user, days: list[dt.date]) -> dict[dt.date, dict[str, int]]:
    """How many deposits ``user`` may see were created on each UTC day of ``days``, by their
    status now: one grouped query over the created_at range."""
    start = dt.datetime.combine(days[0], dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    rows = (
        deposits_visible_to(user=user)
        .filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .values_list("day", "status")
        .annotate(n=Count("pk"))
    )
    by_day: dict[dt.date, dict[str, int]] = {day: {} for day in days}
    for day, status, n in rows:  # at most 30 days x 9 statuses
        by_day.setdefault(day, {})[status] = n
    return by_day


def issuance_by_day(*, days: list[dt.date]) -> dict[dt.date, tuple[int, int]]:
    """nTZS issued on each UTC day of ``days``: (by the mint worker, through the Safe), in
    whole shillings (one nTZS is one shilling)."""
    rows = DailyIssuance.objects.filter(day__gte=days[0], day__lte=days[-1]).values_list(
        "day", "issued_tzs", "safe_issued_tzs"
    )
    issued = {day: (0, 0) for day in days}
    for day, worker, safe in rows:
        issued[day] = (worker, safe)
    return issued


@dataclass(frozen=True)
class SupplyFigures:
    snapshot: SupplySnapshot | None  # the latest, readable or not
    alarm: Armed  # whether an untracked mint raises the alarm, with the reason


def dashboard_supply() -> SupplyFigures:
    """The last supply snapshot (taken by the snapshot task, never by the page) and whether the
    untracked-mint alarm is armed."""
    return SupplyFigures(
        snapshot=SupplySnapshot.objects.order_by("-at").first(),
        alarm=untracked_alarm_armed(),
    )


def supply_by_day(*, days: list[dt.date]) -> dict[dt.date, int]:
    """The on-chain supply at each UTC day's last readable snapshot, in whole nTZS (rounded
    down: a chart bar, not a figure anyone reconciles with); 0 for a day without one. Two
    queries: each day's last time, then those rows."""
    start = dt.datetime.combine(days[0], dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    readable = SupplySnapshot.objects.filter(
        at__gte=start, at__lt=end, onchain_supply_units__isnull=False
    )
    last_at = (
        readable.annotate(day=TruncDate("at", tzinfo=dt.UTC))
        .values("day")
        .annotate(last=Max("at"))
        .values_list("last", flat=True)
    )
    supply = dict.fromkeys(days, 0)
    for at, units in readable.filter(at__in=list(last_at)).values_list(
        "at", "onchain_supply_units"
    ):
        supply[at.astimezone(dt.UTC).date()] = units_whole_ntzs(int(units))
    return supply
