"""The Backstage home is the dashboard (issue 13 point 1): the queue by open status linking to
the filtered deposit list, held and orphan counts, the oldest unpaid and Safe-lane ages,
today's cap bar, the minting panel, open alerts, the last webhook and two 30-day charts —
read from the database and the stored minter check, never the chain, writing no row, and
scoped by role (a bank admin sees their bank's deposits and alerts only)."""

from __future__ import annotations

import datetime as dt
import re
import socket
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from backstage.selectors import cap_level
from backstage.templatetags.backstage_numbers import age, grouped
from core.clock import now, today_utc
from core.models import Alert
from deposits.models import DepositRequest, DepositTransition, OrphanPayment, PaymentNotification
from minting.models import DailyIssuance, MinterCheckRecord, SignerAccount
from reconciliation.models import SupplySnapshot

pytestmark = pytest.mark.django_db

HOME = "/backstage/"
CHANGELIST = "/backstage/deposits/depositrequest/"
S = DepositRequest.Status
WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "TRUNCATE")


@pytest.fixture(autouse=True)
def _midday():
    """Noon UTC, so "5 hours ago" is still today's bar whenever the suite runs."""
    noon = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(12), tzinfo=dt.UTC)
    with time_machine.travel(noon, tick=True):
        yield


def _seed(owner, bank, status: str, *, amount: int = 5_000, age=dt.timedelta(0), held=""):
    """A deposit as the benchmark seeds them: a row in ``status``, created ``age`` ago."""
    at = now() - age
    return DepositRequest.objects.create(
        user=owner,
        bank=bank,
        wallet=owner.test_wallet,
        amount_tzs=amount,
        payment_provider=DepositRequest.Provider.BANK_TRANSFER,
        status=status,
        hold_reason=held,
        created_at=at,
        updated_at=at,
    )


def _count_link(page: str, status: str) -> tuple[str, str]:
    """(href, figure) of the dashboard's count link for ``status``."""
    match = re.search(
        rf'<a class="dash-count" data-status="{status}" href="([^"]+)">([^<]+)</a>', page
    )
    assert match, f"no count link for {status}"
    return match.group(1).replace("&amp;", "&"), match.group(2)


@pytest.fixture
def seeded(amina, juma, nmb, exim):
    """NMB: 3 submitted (one held), 2 mint_pending, 1 mint_failed, 4 minted; Exim: 1
    submitted, 1 mint_requires_safe, 2 cancelled."""
    rows = {
        "nmb_submitted": [
            _seed(amina, nmb, S.SUBMITTED, age=dt.timedelta(hours=5)),
            _seed(amina, nmb, S.SUBMITTED, age=dt.timedelta(hours=1)),
            _seed(amina, nmb, S.SUBMITTED, age=dt.timedelta(days=3), held="amount mismatch"),
        ],
        "nmb_pending": [_seed(amina, nmb, S.MINT_PENDING) for _ in range(2)],
        "nmb_failed": [_seed(amina, nmb, S.MINT_FAILED)],
        "nmb_minted": [_seed(amina, nmb, S.MINTED, age=dt.timedelta(days=2)) for _ in range(4)],
        "exim_submitted": [_seed(juma, exim, S.SUBMITTED, age=dt.timedelta(days=2))],
        "exim_safe": [_seed(juma, exim, S.MINT_REQUIRES_SAFE, amount=9_000_000)],
        "exim_cancelled": [_seed(juma, exim, S.CANCELLED) for _ in range(2)],
    }
    safe = rows["exim_safe"][0]
    DepositTransition.objects.create(
        deposit=safe,
        from_status=S.SUBMITTED,
        to_status=S.MINT_REQUIRES_SAFE,
        source=DepositTransition.Source.SYSTEM,
        at=now() - dt.timedelta(hours=30),
    )
    return rows


def test_the_queue_counts_each_open_status_and_links_to_the_filtered_list(login, neema, seeded):
    page = login(neema).get(HOME).content.decode()

    expected = {
        S.SUBMITTED: 4,
        S.MINT_PENDING: 2,
        S.MINT_PROCESSING: 0,
        S.MINT_FAILED: 1,
        S.MINT_REQUIRES_SAFE: 1,
    }
    for status, count in expected.items():
        href, figure = _count_link(page, status)
        assert href == f"{CHANGELIST}?status__exact={status}"
        assert figure == str(count)
    assert _count_link(page, "held") == (f"{CHANGELIST}?held=yes", "1")
    # Terminal statuses are not part of the queue.
    assert 'data-status="minted"' not in page and 'data-status="cancelled"' not in page


def test_a_count_link_opens_the_list_of_exactly_those_deposits(login, neema, seeded):
    client = login(neema)
    href, _figure = _count_link(client.get(HOME).content.decode(), S.MINT_PENDING)

    listed = client.get(href).content.decode()

    for deposit in seeded["nmb_pending"]:
        assert str(deposit.pk) in listed
    for deposit in seeded["nmb_submitted"] + seeded["nmb_failed"] + seeded["exim_safe"]:
        assert str(deposit.pk) not in listed


def test_orphan_payments_waiting_are_counted(login, neema, seeded):
    OrphanPayment.objects.create(psp_reference="TX-1", amount_tzs=1_000, reason="no deposit")
    OrphanPayment.objects.create(
        psp_reference="TX-2",
        amount_tzs=1_000,
        reason="no deposit",
        status=OrphanPayment.Status.DISMISSED,
    )

    page = login(neema).get(HOME).content.decode()

    assert _count_link(page, "orphans") == (reverse("admin:orphans"), "1")


def test_the_oldest_unpaid_and_safe_lane_ages_are_shown(login, neema, seeded):
    page = login(neema).get(HOME).content.decode()

    # The held submitted deposit (3 days) is not "unpaid": the oldest unheld one is Exim's.
    assert re.search(r"Oldest unpaid.*?>2 days<", page, re.S)
    # The Safe-lane deposit entered the lane 30 hours ago (its transition), not on creation.
    assert re.search(r"Oldest in the Safe lane.*?>1 day, 6 hours<", page, re.S)


def _cap_page(login, user, *, used: int, cap: int = 1_000_000) -> str:
    DailyIssuance.objects.update_or_create(
        day=today_utc(),
        defaults={
            "cap_override_tzs": cap,
            "reserved_tzs": used // 2,
            "issued_tzs": used - used // 2 - used // 10,
            "safe_issued_tzs": used // 10,
        },
    )
    return login(user).get(HOME).content.decode()


@pytest.mark.parametrize(
    ("used", "level", "percent"),
    [
        (690_000, "green", "69.0 %"),
        (700_000, "amber", "70.0 %"),
        (900_000, "amber", "90.0 %"),
        (910_000, "red", "91.0 %"),
    ],
)
def test_the_cap_bar_changes_colour_at_70_and_90_percent(login, neema, used, level, percent):
    page = _cap_page(login, neema, used=used)

    assert f'data-level="{level}"' in page
    assert f'class="cap-used cap-{level}"' in page
    assert f"<strong>{percent}</strong>" in page
    assert f"TSh {used:,} of TSh 1,000,000 used ({percent})" in page


def test_cap_used_is_reserved_plus_issued_plus_safe_issued(login, salim):
    DailyIssuance.objects.create(
        day=today_utc(),
        cap_override_tzs=200_000,
        reserved_tzs=10_000,
        issued_tzs=25_000,
        safe_issued_tzs=5_000,
    )

    page = login(salim).get(HOME).content.decode()

    assert "TSh 40,000 of TSh 200,000 used (20.0 %)" in page
    assert 'data-level="green"' in page


def test_cap_level_is_decided_in_whole_numbers_at_the_boundaries():
    assert cap_level(used_tzs=6_999, cap_tzs=10_000) == "green"
    assert cap_level(used_tzs=7_000, cap_tzs=10_000) == "amber"
    assert cap_level(used_tzs=9_000, cap_tzs=10_000) == "amber"
    assert cap_level(used_tzs=9_001, cap_tzs=10_000) == "red"
    assert cap_level(used_tzs=0, cap_tzs=0) == "red"  # a cap of 0: nothing may be minted


def test_ages_show_their_two_largest_units_in_the_pages_language():
    moment = now()
    assert age(moment - dt.timedelta(seconds=59)) == "under a minute"
    assert age(moment - dt.timedelta(minutes=7, seconds=5)) == "7 minutes"
    assert age(moment - dt.timedelta(hours=1, minutes=1)) == "1 hour, 1 minute"
    assert age(moment - dt.timedelta(days=1, hours=6, minutes=5)) == "1 day, 6 hours"
    assert age(moment - dt.timedelta(days=3, minutes=5)) == "3 days"
    assert age(None) == "—"
    with translation.override("sw"):
        assert age(moment - dt.timedelta(days=2, hours=5)) == "siku 2, saa 5"
    assert grouped(1250000) == "1,250,000"


def test_the_minting_panel_reads_the_switch_and_the_stored_minter_check(login, neema, settings):
    SignerAccount.objects.create(
        address="0x" + "ab" * 20,
        chain_id=settings.CHAIN_ID,
        next_nonce=3,
        sending_enabled=False,
        preflight_ok=False,
        preflight_reason="the minter holds too little gas",
    )
    MinterCheckRecord.objects.create(
        name="minter",
        checked_at=now() - dt.timedelta(minutes=4),
        reachable=True,
        has_minter_role=True,
        gas_balance_wei=4 * 10**14,  # 0.0004 ETH, below MINTER_MIN_GAS_ETH (0.001)
    )

    page = login(neema).get(HOME).content.decode()

    assert re.search(r'id="dash-sending"><span class="bs-bad">stopped<', page)
    assert "the minter holds too little gas" in page
    assert "0.0004 ETH (low)" in page
    assert re.search(r'id="dash-circuit"><span class="bs-ok">closed', page)
    assert "4 minutes ago" in page


def test_open_alerts_and_the_last_webhook_are_shown(login, neema):
    Alert.objects.create(kind="minter gas low", detail="0.0004 ETH left")
    Alert.objects.create(kind="task silent", key="deposits.tasks.poll_zenopay")
    Alert.objects.create(kind="psp reference conflict", key="TX-9", resolved_at=now())
    PaymentNotification.objects.create(
        kind=PaymentNotification.Kind.WEBHOOK, received_at=now() - dt.timedelta(minutes=7)
    )

    page = login(neema).get(HOME).content.decode()

    dashboard = page.split('id="dashboard"')[1]
    assert re.search(r'id="dash-alerts-count"><a href="[^"]+">2 open alerts<', dashboard)
    assert "minter gas low" in dashboard and "task silent" in dashboard
    assert "psp reference conflict" not in dashboard
    assert re.search(r'id="dash-webhook">7 minutes ago<', dashboard)


def test_the_charts_count_the_last_30_days_from_the_database(login, neema, seeded):
    today = today_utc()
    DailyIssuance.objects.create(day=today - dt.timedelta(days=1), issued_tzs=70_000)
    DailyIssuance.objects.create(
        day=today - dt.timedelta(days=3), issued_tzs=10_000, safe_issued_tzs=9_000_000
    )
    DailyIssuance.objects.create(day=today - dt.timedelta(days=40), issued_tzs=1)  # outside

    page = login(neema).get(HOME).content.decode()

    deposits = page.split('id="chart-deposits"')[1].split("</figure>")[0]
    issuance = page.split('id="chart-issuance"')[1].split("</figure>")[0]
    assert deposits.count('class="chart-bar"') == 30 and issuance.count('class="chart-bar"') == 30
    two_days_ago = (today - dt.timedelta(days=2)).isoformat()
    assert f'data-day="{two_days_ago}" data-total="5"' in deposits  # 4 minted + Exim's unpaid
    assert f'data-day="{today.isoformat()}" data-total="8"' in deposits
    assert f'data-day="{(today - dt.timedelta(days=3)).isoformat()}" data-total="9010000"' in (
        issuance
    )
    assert "9,080,000 in all" in issuance  # the description; day 40 is outside the window
    assert 'role="img"' in deposits and "<desc" in deposits and "<table>" in deposits


def test_a_bank_admin_sees_their_banks_figures_only_and_no_minting_panel(login, nmb_admin, seeded):
    Alert.objects.create(kind="deposit held", key="a", deposit_id=seeded["nmb_submitted"][2].pk)
    Alert.objects.create(kind="deposit held", key="b", deposit_id=seeded["exim_safe"][0].pk)
    Alert.objects.create(kind="minter gas low")
    DailyIssuance.objects.create(day=today_utc(), reserved_tzs=950_000, cap_override_tzs=1_000_000)

    page = login(nmb_admin).get(HOME).content.decode()

    assert _count_link(page, S.SUBMITTED)[1] == "3"
    assert _count_link(page, S.MINT_REQUIRES_SAFE)[1] == "0"
    assert _count_link(page, "held")[1] == "1"
    assert 'data-status="orphans"' not in page
    assert 'id="cap-bar"' not in page and 'id="dash-sending"' not in page
    assert 'id="chart-issuance"' not in page and 'id="dash-webhook"' not in page
    assert re.search(r'id="dash-alerts-count">(<a href="[^"]+">)?1 open alert<', page)
    deposits = page.split('id="chart-deposits"')[1]
    assert f'data-day="{today_utc().isoformat()}" data-total="5"' in deposits  # not Exim's 3


def test_the_home_keeps_the_operations_pages_and_the_list_of_records(login, neema, nmb_admin):
    officer = login(neema).get(HOME).content.decode()
    bank = login(nmb_admin).get(HOME).content.decode()

    assert f'href="{reverse("admin:safe_queue")}"' in officer
    assert f'href="{reverse("admin:minting")}"' in officer
    assert f'href="{reverse("admin:safe_queue")}"' not in bank
    for page in (officer, bank):
        assert 'id="dashboard"' in page
        assert f'href="{CHANGELIST}"' in page  # Django's list of records, below


def test_a_superuser_without_a_role_gets_no_dashboard(login, root, seeded):
    page = login(root).get(HOME).content.decode()

    assert 'id="dashboard"' not in page
    assert "You don’t have permission to view or edit anything" in page


@pytest.fixture
def closed_rpc(settings, monkeypatch):
    """The chain as a listener that must never be reached: both RPC URLs point at a socket
    nobody answers, and the clients' factories fail the test if they are called at all."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings.BASE_SEPOLIA_RPC_URL = url
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = url

    def refuse(*args, **kwargs):
        raise AssertionError("the dashboard called the chain")

    for target in (
        "minting.rpc.rpc_connect",
        "minting.rpc.mint_client",
        "minting.chain.web3_connect",
        "minting.chain.ntzs_connect",
        "minting.chain.ntzs_from_settings",
    ):
        monkeypatch.setattr(target, refuse)
    yield listener
    listener.close()


def _connection_attempted(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        accepted, _address = listener.accept()
    except BlockingIOError:
        return False
    accepted.close()
    return True


def test_a_page_view_makes_no_chain_call_and_writes_no_row(
    login, salim, seeded, closed_rpc, settings
):
    SignerAccount.objects.create(address="0x" + "ab" * 20, chain_id=settings.CHAIN_ID)
    MinterCheckRecord.objects.create(name="minter", reachable=True, gas_balance_wei=10**18)
    Alert.objects.create(kind="minter gas low")
    client = login(salim)
    assert client.get(HOME).status_code == 200  # the session's idle clock is stamped here
    rows_before = {
        "deposits": DepositRequest.objects.count(),
        "transitions": DepositTransition.objects.count(),
        "alerts": list(Alert.objects.values_list("pk", "resolved_at", "last_seen")),
        "issuance": DailyIssuance.objects.count(),
    }

    with CaptureQueriesContext(connection) as queries:
        response = client.get(HOME)

    assert response.status_code == 200
    assert 'id="cap-bar"' in response.content.decode()  # the whole dashboard was drawn
    statements = [q["sql"].lstrip().upper() for q in queries.captured_queries]
    assert statements and all(sql.startswith("SELECT") for sql in statements), [
        sql for sql in statements if not sql.startswith("SELECT")
    ]
    assert not _connection_attempted(closed_rpc)
    assert rows_before == {
        "deposits": DepositRequest.objects.count(),
        "transitions": DepositTransition.objects.count(),
        "alerts": list(Alert.objects.values_list("pk", "resolved_at", "last_seen")),
        "issuance": DailyIssuance.objects.count(),
    }


def _snapshot(at, **fields) -> SupplySnapshot:
    values = {
        "at": at,
        "chain_id": 31337,
        "block_number": 120,
        "onchain_supply_units": Decimal(15_000 * 10**18 + 5 * 10**17),
        "db_minted_tzs": 15_000,
        "reconciled_units": Decimal(5 * 10**17),
        "in_flight_tzs": 2_000,
        "discrepancy_units": Decimal(0),
    }
    values.update(fields)
    return SupplySnapshot.objects.create(**values)


def test_the_supply_panel_shows_the_last_snapshots_equation(login, neema):
    _snapshot(now() - dt.timedelta(hours=30), discrepancy_units=Decimal(7))  # older
    _snapshot(now() - dt.timedelta(minutes=3))

    page = login(neema).get(HOME).content.decode()

    supply = page.split('aria-labelledby="dash-supply-title"')[1].split("</section>")[0]
    assert re.search(r'id="dash-discrepancy"><span class="bs-ok">balanced<', supply)
    assert 'id="dash-onchain">15000.5<' in supply
    assert "block 120, 3 minutes ago" in supply
    assert "Untracked-mint alarm not armed" in supply  # nothing indexed yet: the reason says so
    assert "The chain has not been indexed yet." in supply


def test_an_unreadable_supply_is_shown_unavailable_never_zero(login, neema):
    _snapshot(
        now(),
        block_number=None,
        onchain_supply_units=None,
        discrepancy_units=None,
        unavailable_reason="RPC down: connection refused",
    )
    supply = login(neema).get(HOME).content.decode().split('id="dash-supply-title"')[1]
    supply = supply.split("</section>")[0]
    assert re.search(r'id="dash-discrepancy"><span class="bs-bad">unavailable<', supply)
    assert 'id="dash-onchain">unavailable<' in supply
    assert "RPC down: connection refused" in supply
    assert 'id="dash-onchain">0<' not in supply


def test_the_supply_chart_takes_each_days_last_readable_snapshot(login, neema):
    today = today_utc()
    noon = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    _snapshot(noon - dt.timedelta(days=1, hours=2), onchain_supply_units=Decimal(10 * 10**18))
    _snapshot(noon - dt.timedelta(days=1, hours=1), onchain_supply_units=Decimal(12 * 10**18))
    _snapshot(  # later the same day but unreadable: not the day's figure
        noon - dt.timedelta(days=1), onchain_supply_units=None, discrepancy_units=None
    )
    chart = login(neema).get(HOME).content.decode().split('id="chart-supply"')[1]
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert f'data-day="{yesterday}" data-total="12"' in chart


def test_a_bank_admin_sees_no_supply_panel(login, nmb_admin):
    _snapshot(now())
    page = login(nmb_admin).get(HOME).content.decode()
    assert 'id="dash-supply-title"' not in page and 'id="chart-supply"' not in page
