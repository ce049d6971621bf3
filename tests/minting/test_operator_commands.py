"""Operator commands of the pipeline: cap override, the sending switch, status, retry."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.clock import today_utc
from core.models import AdminAction
from deposits.models import DepositRequest
from minting.models import DailyIssuance, SignerAccount


def status_of(deposit) -> str:
    return DepositRequest.objects.get(pk=deposit.pk).status


@pytest.mark.django_db
def test_the_cap_override_applies_at_once(paid_deposit, minting, settings, superadmin):
    settings.DAILY_ISSUANCE_CAP_TZS = 1_000
    deposit = paid_deposit(5_000)
    call_command("process_mint_jobs", once=True)
    assert status_of(deposit) == "mint_pending"
    call_command(
        "cap_override",
        day=today_utc().isoformat(),
        cap="10000",
        reason="launch day",
        actor=superadmin.email,
    )
    call_command("process_mint_jobs", once=True)
    call_command("confirm_mints")
    assert status_of(deposit) == "minted"
    assert DailyIssuance.objects.get(day=today_utc()).cap_override_tzs == 10_000
    assert AdminAction.objects.filter(action="mint.cap_override").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"day": "tomorrow", "cap": "100", "reason": "x"}, "--day must be a date"),
        ({"day": "2026-11-23", "cap": "-1", "reason": "x"}, "--cap must be a whole number"),
        ({"day": "2026-11-23", "cap": "1e6", "reason": "x"}, "--cap must be a whole number"),
        ({"day": "2026-11-23", "cap": "100", "reason": " "}, "needs a reason"),
        ({"day": "2001-01-01", "cap": "100", "reason": "x"}, "in the past"),
    ],
)
def test_cap_override_refuses_bad_input(superadmin, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("cap_override", actor=superadmin.email, **args)
    assert DailyIssuance.objects.count() == 0


@pytest.mark.django_db
def test_only_a_super_admin_may_override_the_cap_or_stop_minting(compliance, minting):
    with pytest.raises(CommandError, match="super_admin"):
        call_command(
            "cap_override",
            day=(today_utc() + dt.timedelta(days=1)).isoformat(),
            cap="1",
            reason="x",
            actor=compliance.email,
        )
    with pytest.raises(CommandError, match="super_admin"):
        call_command("minting_stop", reason="x", actor=compliance.email)


@pytest.mark.django_db
def test_stop_and_start_minting(paid_deposit, minting, superadmin, capsys):
    deposit = paid_deposit()
    call_command("minting_stop", reason="key rotation", actor=superadmin.email)
    call_command("process_mint_jobs", once=True)
    assert status_of(deposit) == "mint_pending"
    assert SignerAccount.objects.get().disabled_reason == "key rotation"
    capsys.readouterr()
    call_command("mint_status", json=True, offline=True)
    assert json.loads(capsys.readouterr().out)["sending_enabled"] is False
    call_command("minting_start", reason="rotation done", actor=superadmin.email)
    call_command("process_mint_jobs", once=True)
    call_command("confirm_mints")
    assert status_of(deposit) == "minted"
    assert list(AdminAction.objects.order_by("at").values_list("action", flat=True)) == [
        "mint.stop",
        "mint.start",
    ]


@pytest.mark.django_db
def test_mint_status_shows_the_queue_cap_signer_and_circuit(paid_deposit, minting, capsys):
    paid_deposit(5_000)
    paid_deposit(20_000)  # the Safe lane
    call_command("mint_status", json=True)
    status = json.loads(capsys.readouterr().out)
    assert status["queue"] == {"mint_pending": 1, "mint_requires_safe": 1}
    assert status["cap_tzs"] == 100_000_000 and status["circuit"] == "closed"
    assert status["minter_role"] is True and status["paused"] is False


@pytest.mark.django_db
def test_mint_retry_command_is_a_no_op_on_other_statuses(paid_deposit, minting, superadmin, capsys):
    deposit = paid_deposit()
    call_command("mint_retry", str(deposit.pk), actor=superadmin.email)
    assert "nothing to do" in capsys.readouterr().out
    assert status_of(deposit) == "mint_pending"


@pytest.mark.django_db
def test_a_retry_of_a_deposit_being_minted_does_nothing(paid_deposit, minting, superadmin, capsys):
    deposit = paid_deposit()
    call_command("process_mint_jobs", once=True)
    assert status_of(deposit) == "mint_processing"
    call_command("mint_retry", str(deposit.pk), actor=superadmin.email)
    assert "nothing to do" in capsys.readouterr().out
    call_command("confirm_mints")
    assert status_of(deposit) == "minted"
    assert minting.contract.functions.totalSupply().call() == 5_000 * 10**18
