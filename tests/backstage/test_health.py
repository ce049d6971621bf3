"""/readyz, `healthcheck` and `queue_status` (runbook: health checks, DB, broker, queues).

Anonymous /readyz says only "ready" or "not ready"; staff sessions and the METRICS_TOKEN
bearer get the detail, read from the last stored check_minter result. No health page writes a
row or moves an alert."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backstage.health import health_checks, readiness_forget
from core.clock import now
from core.models import Alert
from core.services import task_heartbeat_finished
from minting.models import MinterCheckRecord
from minting.services import minter_check
from reconciliation.models import IndexerCursor, SupplySnapshot
from tests import factories
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures

TOKEN = "metrics-token-0123456789-abcdefghijklmnop"
WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "TRUNCATE")


@pytest.fixture(autouse=True)
def _fresh_readiness():
    readiness_forget()
    yield
    readiness_forget()


def _row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def _writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITES)]


@pytest.mark.django_db
def test_anonymous_readyz_says_only_ready_and_writes_nothing(client, chain_settings):
    minter_check()  # a stored chain check with figures, which must not leak
    task_heartbeat_finished(task_name="deposits.tasks.poll_zenopay")
    before = _row_counts()
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/readyz")
        again = client.get("/readyz")
    assert response.status_code == 200 and again.status_code == 200
    assert response.content == b"ready"
    assert response["Content-Type"].startswith("text/plain")
    assert _writes(queries.captured_queries) == []
    assert _row_counts() == before


@pytest.mark.django_db
def test_anonymous_readyz_is_remembered_for_ten_seconds(client):
    assert client.get("/readyz").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/readyz").content == b"ready"
    assert queries.captured_queries == []  # answered from memory: no database round trip


@pytest.mark.django_db
def test_anonymous_readyz_is_503_not_ready_when_the_broker_is_down(client):
    from celery import current_app as app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = previous
    assert response.status_code == 503
    assert response.content == b"not ready"


@pytest.mark.django_db
def test_a_customer_session_gets_only_the_plain_answer(client):
    client.force_login(factories.customer())
    response = client.get("/readyz")
    assert response.status_code == 200 and response.content == b"ready"


@pytest.mark.django_db
def test_staff_view_shows_every_check_from_the_stored_chain_check(
    client, chain_settings, settings, staff_otp_login
):
    minter_check()
    task_heartbeat_finished(task_name="deposits.tasks.poll_zenopay")
    staff_otp_login(client, factories.compliance_officer())
    alerts_before = list(Alert.objects.values_list("pk", "resolved_at"))
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"  # no RPC call per request
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"] and checks["cache"]["ok"]
    assert checks["chain"]["ok"] and "chain id 31337" in checks["chain"]["detail"]
    assert re.search(r"checked \d+ s ago", checks["chain"]["detail"])
    assert checks["minter"]["ok"] and "MINTER_ROLE" in checks["minter"]["detail"]
    assert checks["circuit"]["detail"] == "closed"
    assert checks["task deposits.tasks.poll_zenopay"]["ok"] is True
    assert checks["task minting.tasks.confirm_mints"] == {"ok": False, "detail": "never ran"}
    assert "/api/webhooks/zenopay" in checks["webhook"]["detail"]
    # Only the staff session's own bookkeeping (its idle clock) may be saved.
    assert [q for q in _writes(queries.captured_queries) if "django_session" not in q] == []
    assert list(Alert.objects.values_list("pk", "resolved_at")) == alerts_before


@pytest.mark.django_db
def test_the_staff_view_says_when_the_chain_was_never_checked(client, staff_otp_login):
    staff_otp_login(client, factories.super_admin())
    checks = client.get("/readyz").json()["checks"]
    assert checks["chain"]["ok"] is False
    assert "never checked" in checks["chain"]["detail"]
    assert not MinterCheckRecord.objects.exists()


@pytest.mark.django_db
def test_a_staff_session_without_the_second_factor_gets_only_the_plain_answer(client, settings):
    settings.STAFF_OTP_REQUIRED = True
    client.force_login(factories.super_admin())
    response = client.get("/readyz")
    assert response.content == b"ready"


@pytest.mark.django_db
def test_the_metrics_token_opens_the_detail(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/readyz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["ok"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("sent", [TOKEN[:-1], TOKEN + "x", "", "tökén-ñ"])
def test_a_wrong_metrics_token_is_refused_without_figures(client, settings, sent):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/readyz", HTTP_AUTHORIZATION=f"Bearer {sent}")
    assert response.status_code == 401
    assert response.content == b"invalid token"


@pytest.mark.django_db
def test_without_a_configured_token_the_bearer_path_is_closed(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/readyz", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401


@pytest.mark.django_db
def test_the_stored_check_records_an_unreachable_chain(settings):
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = "0x" + "7" * 40
    settings.MINTER_PRIVATE_KEY = "0x" + "1" * 64
    assert minter_check() is None
    record = MinterCheckRecord.objects.get(name="minter")
    assert record.reachable is False and record.error


@pytest.mark.django_db
def test_healthcheck_command_prints_and_exits_zero_when_ready(capsys):
    call_command("healthcheck", offline=True)
    out = capsys.readouterr().out
    assert "ok   database: postgresql, migrations applied" in out
    assert "ok   broker: redis" in out
    assert "ok   cache: RedisCache" in out


@pytest.mark.django_db
def test_healthcheck_command_reads_the_chain_live_and_writes_nothing(capsys, chain_settings):
    before = _row_counts()
    call_command("healthcheck")
    out = capsys.readouterr().out
    assert "ok   chain: chain id 31337" in out
    assert "ok   minter: MINTER_ROLE" in out
    assert _row_counts() == before


@pytest.mark.django_db
def test_healthcheck_command_fails_with_a_sentence_when_the_broker_is_down():
    from celery import current_app as app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    try:
        with pytest.raises(CommandError, match="Not ready: broker"):
            call_command("healthcheck", offline=True)
    finally:
        app.conf.broker_url = previous


@pytest.mark.django_db
def test_queue_status_counts_the_queues(amina, capsys):  # noqa: F811
    from deposits.services.intake import DepositInput, deposit_create
    from deposits.services.transitions import deposit_hold_set, deposit_payment_confirm

    for amount, ref in ((5_000, "Q1"), (20_000, "Q2"), (6_000, "Q3")):
        deposit, _ = deposit_create(
            user=amina,
            data=DepositInput(
                amount_tzs=amount,
                payment_provider="zenopay",
                wallet_id=amina.test_wallet.pk,
                buyer_phone=f"07{amount:08d}",
            ),
        )
        deposit_payment_confirm(
            deposit_id=deposit.pk, amount_tzs=amount, psp_reference=ref, source="poll"
        )
    deposit_hold_set(deposit_id=deposit.pk, reason="blacklisted recipient", source="worker")
    call_command("queue_status")
    out = capsys.readouterr().out
    assert "mint_pending: 2" in out and "mint_requires_safe: 1" in out
    assert "held: 1" in out and "broker mint queue:" in out


def _snapshot(**fields) -> SupplySnapshot:
    values = {
        "chain_id": 31337,
        "block_number": 10,
        "onchain_supply_units": Decimal(10**21),
        "db_minted_tzs": 1_000,
        "reconciled_units": Decimal(0),
        "discrepancy_units": Decimal(0),
    }
    values.update(fields)
    return SupplySnapshot.objects.create(**values)


@pytest.mark.django_db
def test_the_detail_names_the_indexer_the_last_snapshot_and_open_alerts(client, staff_otp_login):
    IndexerCursor.objects.create(
        name="transfers", chain_id=31337, block_number=42, block_hash="0x" + "1" * 64
    )
    _snapshot(discrepancy_units=Decimal(-1))
    Alert.objects.create(kind="untracked mint", key="0xabc:0")
    staff_otp_login(client, factories.super_admin())
    checks = client.get("/readyz").json()["checks"]
    assert checks["indexer transfers"]["ok"] is True
    assert checks["indexer transfers"]["detail"].startswith("block 42, ")
    assert checks["supply"]["ok"] is False
    assert "discrepancy -1 base units;" in checks["supply"]["detail"]
    assert checks["alerts"] == {"ok": False, "detail": "1 open: untracked mint"}


@pytest.mark.django_db
def test_an_unavailable_snapshot_fails_the_strict_healthcheck_only(capsys):
    _snapshot(
        block_number=None,
        onchain_supply_units=None,
        discrepancy_units=None,
        unavailable_reason="RPC down",
    )
    call_command("healthcheck", offline=True)  # the web process can serve: exit 0
    assert "FAIL supply: unavailable (RPC down)" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"Checks failed: .*supply"):
        call_command("healthcheck", offline=True, strict=True)


@pytest.mark.django_db
def test_a_stale_snapshot_and_a_silent_indexer_are_failures(settings):
    old = now() - dt.timedelta(hours=1)
    IndexerCursor.objects.create(
        name="transfers",
        chain_id=31337,
        block_number=42,
        block_hash="0x" + "1" * 64,
        updated_at=old,
    )
    _snapshot(at=old)
    checks = {c.name: c for c in health_checks(chain="none")}
    assert checks["indexer transfers"].ok is False
    assert checks["supply"].ok is False and "3600 s ago" in checks["supply"].detail


@pytest.mark.django_db
def test_queue_status_names_the_indexer_snapshot_and_open_alerts(capsys):
    Alert.objects.create(kind="minter gas low")
    call_command("queue_status")
    out = capsys.readouterr().out
    assert "open alerts: 1" in out
    assert "indexer: never ran" in out
    assert "supply: no snapshot yet" in out
