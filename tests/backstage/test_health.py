"""/readyz, `healthcheck` and `queue_status` (runbook: health checks, DB, broker, queues)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.services import task_heartbeat_finished
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures


@pytest.mark.django_db
def test_readyz_reports_every_check_and_is_ready_with_database_and_broker(client,
                                                                       chain_settings):
    task_heartbeat_finished(task_name="deposits.tasks.poll_zenopay")
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"]
    assert checks["chain"]["ok"] and "31337" in checks["chain"]["detail"]
    assert checks["minter"]["ok"] and checks["circuit"]["detail"] == "closed"
    assert checks["task deposits.tasks.poll_zenopay"]["ok"] is True
    assert checks["task minting.tasks.confirm_mints"] == {"ok": False, "detail": "never ran"}
    assert "/api/webhooks/zenopay" in checks["webhook"]["detail"]


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_down(client, settings):
    from config.celery_app import app

    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = previous
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.django_db
def test_healthcheck_command_prints_and_exits_zero_when_ready(capsys):
    call_command("healthcheck", offline=True)
    out = capsys.readouterr().out
    assert "ok   database: postgresql, migrations applied" in out
    assert "ok   broker: redis" in out


@pytest.mark.django_db
def test_healthcheck_command_fails_with_a_sentence_when_the_broker_is_down():
    from config.celery_app import app

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
        deposit, _ = deposit_create(user=amina, data=DepositInput(
            amount_tzs=amount, payment_provider="zenopay", wallet_id=amina.test_wallet.pk,
            buyer_phone=f"07{amount:08d}"))
        deposit_payment_confirm(deposit_id=deposit.pk, amount_tzs=amount, psp_reference=ref,
                                source="poll")
    deposit_hold_set(deposit_id=deposit.pk, reason="blacklisted recipient", source="worker")
    call_command("queue_status")
    out = capsys.readouterr().out
    assert "mint_pending: 2" in out and "mint_requires_safe: 1" in out
    assert "held: 1" in out and "broker mint queue:" in out
