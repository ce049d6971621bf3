"""The Backstage home (issue 13, DESIGN §8, §9): "is the issuer healthy?" at a glance.

An adapter: it asks backstage.selectors for the figures, scoped by role (a bank admin sees
their bank's deposits and alerts only; the cap, the minting panel, orphan payments, the
webhook and the issuance chart are for compliance and super admins, who may open the minting
page), and lays out two SVG charts on the server — no chart library, no script, nothing the
Content-Security-Policy would refuse. A page view calls no chain and writes no row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backstage.minting_page import minting_page_allowed
from backstage.orphans import orphans_page_allowed
from backstage.selectors import (
    CAP_AMBER_PERCENT,
    CAP_RED_PERCENT,
    OPEN_STATUSES,
    chart_days,
    dashboard_cap,
    dashboard_minting,
    dashboard_queue,
    dashboard_supply,
    deposits_by_day,
    issuance_by_day,
    last_webhook_at,
    orphans_open_count,
    supply_by_day,
)
from core.models import Alert
from core.money import tzs_to_units, units_as_ntzs
from core.roles import STAFF_ROLES, user_has_role
from core.selectors import alerts_open_summary
from deposits.models import DepositRequest
from deposits.selectors import alerts_visible_to
from minting.selectors import wei_as_eth

S = DepositRequest.Status
ALERTS_LISTED = 5  # the newest open alerts named on the dashboard; the rest behind the link

STATUS_LABELS = {
    S.SUBMITTED: gettext_lazy("Awaiting payment"),
    S.MINT_PENDING: gettext_lazy("Waiting to mint"),
    S.MINT_PROCESSING: gettext_lazy("Minting now"),
    S.MINT_FAILED: gettext_lazy("Mint failed"),
    S.MINT_REQUIRES_SAFE: gettext_lazy("Safe lane"),
    S.MINTED: gettext_lazy("Minted"),
    S.CANCELLED: gettext_lazy("Cancelled"),
    S.REJECTED: gettext_lazy("Rejected"),
    S.REFUNDED: gettext_lazy("Refunded"),
}
# The stacking order of the deposits chart, bottom up: done, in the pipeline, ended unminted.
CHART_STATUSES = (
    S.MINTED,
    S.MINT_PROCESSING,
    S.MINT_PENDING,
    S.MINT_REQUIRES_SAFE,
    S.MINT_FAILED,
    S.SUBMITTED,
    S.REFUNDED,
    S.REJECTED,
    S.CANCELLED,
)
CAP_LEVEL_TEXT = {
    "green": gettext_lazy("below %(amber)s %%"),
    "amber": gettext_lazy("%(amber)s–%(red)s %%"),
    "red": gettext_lazy("above %(red)s %%"),
}
CIRCUIT_TEXT = {
    "closed": gettext_lazy("closed (chain calls pass)"),
    "open": gettext_lazy("open (chain calls paused)"),
    "half_open": gettext_lazy("half open (one trial call)"),
}

# --- SVG charts --------------------------------------------------------------------------------
# Drawn in a fixed coordinate box scaled by CSS (viewBox); coordinates are strings with one
# decimal, so no locale's decimal comma reaches an SVG attribute.
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 6, 10, 26
LABEL_EVERY = 5  # a date under every fifth bar, counted back from today


def _f(value: float) -> str:
    return f"{value:.1f}"


def _nice_step(value: int) -> int:
    """The smallest 1, 2 or 5 x 10**k at least ``value`` (and at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def _axis(top_value: int) -> tuple[int, list[int]]:
    """A y axis over 0..top_value: about four whole-number gridline steps."""
    step = _nice_step(max(-(-top_value // 4), 1))
    top = step * max(-(-top_value // step), 1)
    return top, list(range(0, top + 1, step))


def _compact(n: int) -> str:
    """An axis label: 2M, 1.5M, 250k, 800."""
    if n >= 1_000_000 and n % 100_000 == 0:
        whole, tenths = divmod(n // 100_000, 10)
        return f"{whole}.{tenths}M" if tenths else f"{whole}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


@dataclass
class Segment:
    css: str
    label: str
    value: int
    y: str
    height: str


@dataclass
class Bar:
    day: dt.date
    total: int
    x: str
    width: str
    label_x: str
    labelled: bool
    segments: list[Segment] = field(default_factory=list)


@dataclass
class Chart:
    key: str
    bars: list[Bar]
    gridlines: list[tuple[str, str]]  # (y, label)
    legend: list[tuple[str, str]]  # (css class, label)
    series: list[str]  # the table's column labels, in legend order
    rows: list[tuple[dt.date, list[int], int]]  # the table fallback: day, values, total
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM


def _stacked_chart(
    key: str, days: list[dt.date], series: list[tuple[str, str]], values: dict
) -> Chart:
    """``series``: (css class, label) bottom up; ``values[day]``: one int per series."""
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(days)
    totals = {day: sum(values[day]) for day in days}
    top, ticks = _axis(max(totals.values(), default=0))
    scale = plot_h / top
    bars = []
    for i, day in enumerate(days):
        x = LEFT + i * slot + slot * 0.15
        bar = Bar(
            day=day,
            total=totals[day],
            x=_f(x),
            width=_f(slot * 0.7),
            label_x=_f(x + slot * 0.35),
            labelled=(len(days) - 1 - i) % LABEL_EVERY == 0,
        )
        base = HEIGHT - BOTTOM  # a pixel coordinate of the SVG, never an amount
        for (css, label), value in zip(series, values[day], strict=True):
            if not value:
                continue
            height = value * scale
            base -= height
            bar.segments.append(Segment(css, label, value, _f(base), _f(height)))
        bars.append(bar)
    return Chart(
        key=key,
        bars=bars,
        gridlines=[(_f(HEIGHT - BOTTOM - tick * scale), _compact(tick)) for tick in ticks],
        legend=series,
        series=[label for _css, label in series],
        rows=[(day, values[day], totals[day]) for day in reversed(days)],
        total=sum(totals.values()),
    )


def deposits_chart(*, user, days: list[dt.date]) -> Chart:
    counts = deposits_by_day(user=user, days=days)
    series = [(f"chart-{status}", str(STATUS_LABELS[status])) for status in CHART_STATUSES]
    values = {day: [counts[day].get(status, 0) for status in CHART_STATUSES] for day in days}
    return _stacked_chart("deposits", days, series, values)


def issuance_chart(*, days: list[dt.date]) -> Chart:
    issued = issuance_by_day(days=days)
    series = [
        ("chart-worker", str(_("Mint worker"))),
        ("chart-safe", str(_("Through the Safe"))),
    ]
    return _stacked_chart("issuance", days, series, {day: list(issued[day]) for day in days})


def supply_chart(*, days: list[dt.date]) -> Chart:
    supply = supply_by_day(days=days)
    series = [("chart-supply", str(_("On-chain supply")))]
    return _stacked_chart("supply", days, series, {day: [supply[day]] for day in days})


def _ntzs(units) -> str | None:
    return None if units is None else units_as_ntzs(int(units))


def supply_panel() -> dict:
    """The supply equation of the last snapshot, as exact nTZS text; None for a figure that
    could not be read (shown as "unavailable", never 0)."""
    figures = dashboard_supply()
    snapshot = figures.snapshot
    panel = {"snapshot": snapshot, "alarm": figures.alarm}
    if snapshot is not None:
        panel.update(
            onchain=_ntzs(snapshot.onchain_supply_units),
            db_minted=units_as_ntzs(tzs_to_units(snapshot.db_minted_tzs)),
            reconciled=_ntzs(snapshot.reconciled_units),
            in_flight=units_as_ntzs(tzs_to_units(snapshot.in_flight_tzs)),
            discrepancy=_ntzs(snapshot.discrepancy_units),
            balanced=snapshot.discrepancy_units is not None and snapshot.discrepancy_units == 0,
        )
    return panel


# --- The page's context ------------------------------------------------------------------------


def _changelist(query: str) -> str:
    return f"{reverse('admin:deposits_depositrequest_changelist')}?{query}"


def dashboard_context(request, *, site) -> dict:
    """What the home page shows ``request.user``; ``{"dashboard": None}`` for an account
    without a staff role (a bare superuser sees Django's "nothing to view")."""
    user = request.user
    if not user_has_role(user, *STAFF_ROLES):
        return {"dashboard": None}
    platform = minting_page_allowed(user)  # compliance and super admins
    queue = dashboard_queue(user=user)
    days = chart_days()
    alert_admin = site._registry.get(Alert)
    can_list_alerts = alert_admin is not None and alert_admin.has_view_permission(request)
    board = {
        "queue": [
            {
                "status": status,
                "label": STATUS_LABELS[status],
                "count": queue.counts[status],
                "url": _changelist(f"status__exact={status}"),
            }
            for status in OPEN_STATUSES
        ],
        "held": queue.held,
        "held_url": _changelist("held=yes"),
        "oldest_unpaid_at": queue.oldest_unpaid_at,
        "oldest_unpaid_url": _changelist(f"status__exact={S.SUBMITTED}&held=no"),
        "oldest_safe_at": queue.oldest_safe_at,
        "oldest_safe_url": _changelist(f"status__exact={S.MINT_REQUIRES_SAFE}"),
        "alerts": alerts_open_summary(alerts=alerts_visible_to(user=user), newest=ALERTS_LISTED),
        "alerts_url": (
            f"{reverse('admin:core_alert_changelist')}?resolved_at__isnull=True"
            if can_list_alerts
            else ""
        ),
        "deposits_chart": deposits_chart(user=user, days=days),
        "platform": platform,
    }
    if orphans_page_allowed(user):
        board["orphans"] = orphans_open_count()
    if platform:
        cap = dashboard_cap()
        minting = dashboard_minting()
        board.update(
            cap=cap,
            cap_percent=f"{cap.percent_tenths // 10}.{cap.percent_tenths % 10}",
            cap_bar_width=_f(min(cap.percent_tenths, 1000) / 10),
            cap_level_text=CAP_LEVEL_TEXT[cap.level]
            % {"amber": CAP_AMBER_PERCENT, "red": CAP_RED_PERCENT},
            cap_amber_x=CAP_AMBER_PERCENT,
            cap_red_x=CAP_RED_PERCENT,
            minting=minting,
            circuit_text=CIRCUIT_TEXT.get(minting.circuit, minting.circuit),
            gas=(
                wei_as_eth(int(minting.check.gas_balance_wei))
                if minting.check and minting.check.gas_balance_wei is not None
                else ""
            ),
            webhook_at=last_webhook_at(),
            issuance_chart=issuance_chart(days=days),
            supply=supply_panel(),
            supply_chart=supply_chart(days=days),
        )
    return {"dashboard": board}
