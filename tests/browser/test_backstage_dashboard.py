"""The Backstage home in a browser (issue 13 point 1): a compliance officer sees the figures
the database holds — counts per open status, held, today's cap used, open alerts — a count
opens the matching filtered deposit list, and the cap bar turns amber at 70 % and red above
90 %, its figure in words beside the colour. Screenshots at desktop width:
var/screenshots/backstage-dashboard-en.png and backstage-dashboard-sw.png."""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from core.clock import now, today_utc
from core.models import Alert
from deposits.models import DepositRequest
from minting.models import DailyIssuance, MinterCheckRecord, SignerAccount
from tests.browser.support import (
    DESKTOP,
    assert_layout,
    bank_create,
    screenshot,
    staff_session_cookie,
    t,
)
from tests.factories import KycCaseFactory, WalletFactory, compliance_officer, customer

S = DepositRequest.Status
CAP = 1_000_000
GREEN, AMBER, RED = "rgb(46, 157, 79)", "rgb(224, 161, 0)", "rgb(198, 40, 40)"


def _seed_deposits() -> dict[str, list[DepositRequest]]:
    """A month of a small issuer: every status, spread over the last days (as the benchmark
    seeds them, rows written directly)."""
    bank_create(name="CRDB (ZenoPay settlement)", is_zenopay_settlement=True)
    nmb = bank_create(name="NMB", account_name="nTZS Ltd", account_number="2041100077")
    amina = customer(email="amina@ntzs.test", phone="+255712345678")
    KycCaseFactory(user=amina, approved=True)
    wallet = WalletFactory(user=amina, verified=True)
    plan = {
        S.SUBMITTED: (3, [0, 1, 2]),
        S.MINT_PENDING: (4, [0]),
        S.MINT_PROCESSING: (1, [0]),
        S.MINT_FAILED: (2, [1]),
        S.MINT_REQUIRES_SAFE: (1, [0]),
        S.MINTED: (40, list(range(29))),
        S.CANCELLED: (6, [0, 3, 5, 8, 13, 21]),
        S.REJECTED: (1, [4]),
    }
    rows: dict[str, list[DepositRequest]] = {}
    for status, (count, days_back) in plan.items():
        for i in range(count):
            at = now() - dt.timedelta(days=days_back[i % len(days_back)], minutes=10 + i)
            rows.setdefault(status, []).append(
                DepositRequest.objects.create(
                    user=amina,
                    bank=nmb,
                    wallet=wallet,
                    amount_tzs=5_000 + 1_000 * i,
                    payment_provider=DepositRequest.Provider.BANK_TRANSFER,
                    status=status,
                    hold_reason="paid amount differs" if status == S.SUBMITTED and i == 2 else "",
                    created_at=at,
                    updated_at=at,
                )
            )
    return rows


def _issuance(used: int) -> None:
    """Today's cap of TSh 1,000,000 with ``used`` split over reserved, issued and Safe."""
    DailyIssuance.objects.update_or_create(
        day=today_utc(),
        defaults={
            "cap_override_tzs": CAP,
            "reserved_tzs": 20_000,
            "issued_tzs": used - 20_000 - 100_000,
            "safe_issued_tzs": 100_000,
        },
    )


def _cap_bar(page) -> tuple[str, str, str]:
    """(data-level, the used rect's computed fill, the figure shown)."""
    bar = page.locator("#cap-bar")
    fill = page.eval_on_selector("#cap-bar .cap-used", "el => getComputedStyle(el).fill")
    return bar.get_attribute("data-level"), fill, page.locator(".cap-figure strong").inner_text()


def test_the_dashboard_shows_the_databases_figures_and_its_counts_open_the_lists(open_tab, site):
    rows = _seed_deposits()
    for day_back in range(1, 30):
        DailyIssuance.objects.create(
            day=today_utc() - dt.timedelta(days=day_back),
            issued_tzs=150_000 + 25_000 * (day_back % 7),
            safe_issued_tzs=2_000_000 if day_back in (6, 17) else 0,
        )
    _issuance(650_000)
    SignerAccount.objects.create(
        address="0x" + "ab" * 20,
        chain_id=settings.CHAIN_ID,
        sending_enabled=True,
        preflight_ok=True,
    )
    MinterCheckRecord.objects.create(
        name="minter", reachable=True, has_minter_role=True, gas_balance_wei=25 * 10**15
    )
    Alert.objects.create(kind="mint failed accumulating", detail="2 deposits in mint_failed")
    Alert.objects.create(kind="task silent", key="deposits.tasks.poll_zenopay")
    Alert.objects.create(kind="minter gas low", resolved_at=now())
    neema = compliance_officer()
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(neema, site)])

    tab.goto(f"{site}/backstage/")
    page = tab.page

    for status in (S.SUBMITTED, S.MINT_PENDING, S.MINT_PROCESSING, S.MINT_FAILED):
        shown = page.locator(f'.dash-count[data-status="{status}"]').inner_text()
        assert shown == str(len(rows[status])), status
    assert page.locator('.dash-count[data-status="mint_requires_safe"]').inner_text() == "1"
    assert page.locator('.dash-count[data-status="held"]').inner_text() == "1"
    assert page.locator("#dash-alerts-count").inner_text() == "2 open alerts"
    assert _cap_bar(page) == ("green", GREEN, "65.0 %")
    assert "TSh 650,000" in page.locator(".bs-cap").inner_text()
    assert page.locator("#chart-deposits .chart-bar").count() == 30
    assert page.locator("#chart-issuance .chart-bar").count() == 30
    assert_layout(page, "Backstage dashboard")

    # The cap bar: amber from 70 %, still amber at 90 %, red above.
    for used, expected in (
        (700_000, ("amber", AMBER, "70.0 %")),
        (900_000, ("amber", AMBER, "90.0 %")),
        (910_000, ("red", RED, "91.0 %")),
    ):
        _issuance(used)
        page.reload()
        assert _cap_bar(page) == expected
        assert expected[2] in page.locator("#cap-bar title").text_content()
    _issuance(780_000)
    page.reload()
    screenshot(page, "backstage-dashboard-en")

    # A count opens the deposit list filtered to that status: exactly those deposits.
    page.locator('.dash-count[data-status="mint_pending"]').click()
    page.wait_for_url("**/deposits/depositrequest/?status__exact=mint_pending")
    listed = page.locator("#result_list tbody tr")
    assert listed.count() == len(rows[S.MINT_PENDING])
    assert {str(d.pk) for d in rows[S.MINT_PENDING]} <= set(
        page.locator("#result_list tbody").inner_text().split()
    )
    assert tab.console_errors == [] and tab.failed_requests == []


def test_the_dashboard_in_kiswahili(open_tab, site):
    _seed_deposits()
    _issuance(930_000)
    Alert.objects.create(kind="task silent", key="deposits.tasks.poll_zenopay")
    neema = compliance_officer()
    tab = open_tab(lang="sw", size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(neema, site)])

    tab.goto(f"{site}/backstage/")
    screenshot(tab.page, "backstage-dashboard-sw")

    assert _cap_bar(tab.page)[:2] == ("red", RED)
    assert t("sw", "Deposits per day") in tab.page.locator("#chart-deposits h2").inner_text()
    assert_layout(tab.page, "Backstage dashboard (sw)")
    assert tab.console_errors == [] and tab.failed_requests == []
