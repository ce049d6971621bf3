"""/metrics (DESIGN §8, issue 14 point 7): Prometheus text behind the METRICS_TOKEN bearer,
gauges equal to the database's figures at scrape time, no RPC call and no row written."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from core.clock import now, today_utc
from core.services import alert_raise, alert_resolve, task_heartbeat_finished
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.transitions import deposit_hold_set, deposit_payment_confirm
from minting.models import DailyIssuance, MinterCheckRecord
from reconciliation.models import IndexerCursor, SupplySnapshot
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures

TOKEN = "metrics-token-0123456789-abcdefghijklmnop"
WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "TRUNCATE")


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    # An RPC URL nothing listens on: a scrape that called the chain would fail or hang.
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"
    return TOKEN


def _scrape(client, token: str = TOKEN):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")


def _samples(response) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _deposit(user, amount: int, *, confirm: str | None = None):
    deposit, _ = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider="zenopay",
            wallet_id=user.test_wallet.pk,
            buyer_phone="0712345678",
        ),
    )
    if confirm:
        deposit_payment_confirm(
            deposit_id=deposit.pk, amount_tzs=amount, psp_reference=confirm, source="poll"
        )
    return deposit


@pytest.mark.django_db
def test_a_scrape_without_a_token_is_refused(client, token):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert b"ntzs_" not in response.content


@pytest.mark.django_db
def test_a_wrong_token_is_refused(client, token):
    response = _scrape(client, token="not-the-token")
    assert response.status_code == 401
    assert b"ntzs_" not in response.content


@pytest.mark.django_db
def test_without_a_configured_token_metrics_are_closed(client, settings):
    settings.METRICS_TOKEN = ""
    assert _scrape(client, token="").status_code == 401
    assert _scrape(client, token="anything").status_code == 401


@pytest.mark.django_db
def test_the_gauges_equal_the_database(client, token, amina):  # noqa: F811
    _deposit(amina, 5_000)  # submitted: unpaid
    _deposit(amina, 6_000, confirm="M1")  # mint_pending
    held = _deposit(amina, 7_000, confirm="M2")
    deposit_hold_set(deposit_id=held.pk, reason="blacklisted recipient", source="worker")
    _deposit(amina, 20_000, confirm="M3")  # above the worker lane: mint_requires_safe
    alert_raise(kind="minter gas low", detail="low")
    alert_raise(kind="psp reference conflict", key="A")
    alert_raise(kind="psp reference conflict", key="B")
    alert_raise(kind="task silent", key="x")
    alert_resolve(kind="task silent", key="x")
    DailyIssuance.objects.create(
        day=today_utc(), cap_override_tzs=100_000, reserved_tzs=6_000, issued_tzs=30_000
    )
    task_heartbeat_finished(task_name="deposits.tasks.poll_zenopay")
    MinterCheckRecord.objects.create(
        name="minter", reachable=True, gas_balance_wei=Decimal(123_456), paused=False
    )
    IndexerCursor.objects.create(
        name="transfers",
        chain_id=31337,
        block_number=77,
        block_hash="0x" + "ab" * 32,
        updated_at=now() - dt.timedelta(seconds=30),
    )
    SupplySnapshot.objects.create(
        chain_id=31337,
        block_number=77,
        onchain_supply_units=Decimal(10**21),
        db_minted_tzs=1_000,
        reconciled_units=Decimal(0),
        discrepancy_units=Decimal(5),
    )

    response = _scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    s = _samples(response)
    assert s[("ntzs_deposits", (("status", "submitted"),))] == 1
    assert s[("ntzs_deposits", (("status", "mint_pending"),))] == 2
    assert s[("ntzs_deposits", (("status", "mint_requires_safe"),))] == 1
    assert s[("ntzs_deposits", (("status", "minted"),))] == 0
    assert s[("ntzs_deposits_held", ())] == 1
    assert s[("ntzs_deposit_oldest_unpaid_age_seconds", ())] >= 0
    assert s[("ntzs_cap_tzs", ())] == 100_000
    assert s[("ntzs_cap_used_tzs", ())] == 36_000
    assert s[("ntzs_alerts_open", (("kind", "psp reference conflict"),))] == 2
    assert s[("ntzs_alerts_open", (("kind", "minter gas low"),))] == 1
    assert ("ntzs_alerts_open", (("kind", "task silent"),)) not in s  # resolved
    assert s[("ntzs_minter_gas_wei", ())] == 123_456
    assert s[("ntzs_rpc_circuit_state", (("state", "closed"),))] == 1
    assert s[("ntzs_indexer_block", (("stream", "transfers"),))] == 77
    assert 30 <= s[("ntzs_indexer_lag_seconds", (("stream", "transfers"),))] < 90
    assert s[("ntzs_supply_discrepancy_units", ())] == 5
    assert s[("ntzs_supply_discrepancy", ())] == 1
    assert s[("ntzs_supply_available", ())] == 1
    heartbeat = ("ntzs_task_heartbeat_age_seconds", (("task", "deposits.tasks.poll_zenopay"),))
    assert 0 <= s[heartbeat] < 60


@pytest.mark.django_db
def test_an_unavailable_supply_is_left_out_never_zero(client, token):
    SupplySnapshot.objects.create(
        chain_id=31337,
        block_number=None,
        onchain_supply_units=None,
        db_minted_tzs=1_000,
        reconciled_units=Decimal(0),
        discrepancy_units=None,
        unavailable_reason="RPC down",
    )
    s = _samples(_scrape(client))
    assert s[("ntzs_supply_available", ())] == 0
    assert ("ntzs_supply_discrepancy_units", ()) not in s
    assert ("ntzs_supply_discrepancy", ()) not in s


@pytest.mark.django_db
def test_a_scrape_writes_nothing(client, token, amina):  # noqa: F811
    _deposit(amina, 6_000, confirm="W1")
    with CaptureQueriesContext(connection) as queries:
        assert _scrape(client).status_code == 200
    assert queries.captured_queries  # the queries are really counted
    writes = [
        q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)
    ]
    assert writes == []
