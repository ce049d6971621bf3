"""alerts_check (DESIGN §8, issue 14 point 9): each condition opens its alert once (one ERROR
line), keeps it open while it holds, and resolves it when it clears."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from eth_account import Account

from config.beat import beat_schedule
from core.alerts import (
    ALERT_KINDS,
    CAP_NEARLY_USED,
    MINT_FAILED_ACCUMULATING,
    MISSING_MINT,
    SAFE_DEPOSIT_WAITING,
    TASK_SILENT,
    UNEXPECTED_ROLE_HOLDER,
)
from core.clock import now, today_utc
from core.env import read_address_map
from core.models import Alert, TaskHeartbeat
from deposits.models import DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from minting.chain import hex_str, role_id
from minting.models import DailyIssuance, MintLogClaim
from reconciliation.models import ChainTransfer, IndexerCursor, TokenRoleEvent
from reconciliation.services.alerts import (
    alerts_evaluate,
    cap_nearly_used_check,
    mint_failed_accumulating_check,
    missing_mints_check,
    safe_waiting_check,
    tasks_silent_check,
    token_role_holders_check,
)
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

SAFE = "0x" + "5a" * 20
STRANGER = "0x" + "66" * 20


def _open(kind: str, key: str = "") -> Alert | None:
    return Alert.objects.filter(kind=kind, key=key, resolved_at__isnull=True).first()


def _deposits(user, n: int, status: str) -> list[DepositRequest]:
    """Deposits put straight into ``status`` (the pipeline's own paths are tested elsewhere)."""
    made = []
    for _ in range(n):
        deposit, _created = deposit_create(
            user=user,
            data=DepositInput(
                amount_tzs=5_000,
                payment_provider="zenopay",
                wallet_id=user.test_wallet.pk,
                buyer_phone="0712345678",
            ),
        )
        DepositRequest.objects.filter(pk=deposit.pk).update(status=status)
        made.append(deposit)
    return made


def test_every_kind_raised_here_is_registered():
    for kind in (
        MINT_FAILED_ACCUMULATING,
        CAP_NEARLY_USED,
        TASK_SILENT,
        SAFE_DEPOSIT_WAITING,
        UNEXPECTED_ROLE_HOLDER,
    ):
        assert ALERT_KINDS[kind].action


def test_mint_failed_accumulating_opens_at_the_threshold_once_and_resolves(
    amina,  # noqa: F811
    settings,
    caplog,
):
    settings.MINT_FAILED_ALERT_THRESHOLD = 3
    failed = _deposits(amina, 2, "mint_failed")
    assert mint_failed_accumulating_check() is False
    assert _open(MINT_FAILED_ACCUMULATING) is None

    failed += _deposits(amina, 1, "mint_failed")
    with caplog.at_level(logging.ERROR):
        assert mint_failed_accumulating_check() is True
        assert mint_failed_accumulating_check() is True  # still holds: no second line
    lines = [r for r in caplog.records if "mint_failed accumulating" in r.getMessage()]
    assert len(lines) == 1
    assert "3 deposits are in mint_failed (threshold 3)" in _open(MINT_FAILED_ACCUMULATING).detail

    DepositRequest.objects.filter(pk=failed[0].pk).update(status="mint_pending")
    assert mint_failed_accumulating_check() is False
    assert _open(MINT_FAILED_ACCUMULATING) is None
    assert Alert.objects.filter(kind=MINT_FAILED_ACCUMULATING, resolved_at__isnull=False).exists()


@pytest.mark.parametrize(
    ("used", "fires"), [(89_999, False), (90_000, True), (100_000, True)], ids=str
)
def test_cap_alert_fires_from_ninety_percent(used, fires):
    DailyIssuance.objects.create(
        day=today_utc(), cap_override_tzs=100_000, reserved_tzs=used - 40_000, issued_tzs=40_000
    )
    assert cap_nearly_used_check() is fires
    assert (_open(CAP_NEARLY_USED) is not None) is fires


def test_cap_alert_resolves_when_the_cap_is_raised():
    DailyIssuance.objects.create(day=today_utc(), cap_override_tzs=100_000, issued_tzs=95_000)
    assert cap_nearly_used_check() is True
    DailyIssuance.objects.filter(day=today_utc()).update(cap_override_tzs=200_000)
    assert cap_nearly_used_check() is False
    assert _open(CAP_NEARLY_USED) is None


def test_a_silent_task_opens_its_own_alert_and_a_never_run_task_none(settings):
    settings.BEAT_INTERVALS_S = {
        "deposits.tasks.poll_zenopay": 30,
        "minting.tasks.confirm_mints": 5,
        "minting.tasks.check_minter": 600,
        "reconciliation.tasks.alerts_check": 60,
    }
    TaskHeartbeat.objects.create(
        task_name="deposits.tasks.poll_zenopay", last_finished=now() - dt.timedelta(seconds=61)
    )
    TaskHeartbeat.objects.create(
        task_name="minting.tasks.confirm_mints", last_finished=now() - dt.timedelta(seconds=3)
    )
    assert tasks_silent_check() == 1
    alert = _open(TASK_SILENT, key="deposits.tasks.poll_zenopay")
    assert "runs every 30 s" in alert.detail
    assert _open(TASK_SILENT, key="minting.tasks.confirm_mints") is None
    assert _open(TASK_SILENT, key="minting.tasks.check_minter") is None  # never ran

    TaskHeartbeat.objects.filter(task_name="deposits.tasks.poll_zenopay").update(
        last_finished=now()
    )
    assert tasks_silent_check() == 0
    assert _open(TASK_SILENT, key="deposits.tasks.poll_zenopay") is None


def test_a_deposit_waiting_for_the_safe_over_a_day_opens_the_alert(amina):  # noqa: F811
    (waiting,) = _deposits(amina, 1, "mint_requires_safe")
    assert safe_waiting_check() is False
    DepositRequest.objects.filter(pk=waiting.pk).update(
        updated_at=now() - dt.timedelta(days=1, minutes=1)
    )
    assert safe_waiting_check() is True
    assert "1 deposit(s) have waited for the Safe" in _open(SAFE_DEPOSIT_WAITING).detail
    DepositRequest.objects.filter(pk=waiting.pk).update(status="minted")
    assert safe_waiting_check() is False
    assert _open(SAFE_DEPOSIT_WAITING) is None


def test_alerts_evaluate_runs_every_condition(amina, settings):  # noqa: F811
    settings.MINT_FAILED_ALERT_THRESHOLD = 1
    _deposits(amina, 1, "mint_failed")
    result = alerts_evaluate()
    assert result[MINT_FAILED_ACCUMULATING] == 1
    assert result[CAP_NEARLY_USED] == 0 and result[SAFE_DEPOSIT_WAITING] == 0


def _role_event(kind: str, role: str, account: str, block: int) -> None:
    TokenRoleEvent.objects.create(
        chain_id=31337,
        tx_hash="0x" + f"{block:064x}",
        log_index=0,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        kind=kind,
        role=hex_str(role_id(role)),
        account=account,
        sender=SAFE,
    )


def test_an_unexpected_role_holder_opens_the_alert_and_its_revocation_resolves_it(settings):
    settings.CHAIN_ID = 31337
    settings.TOKEN_ROLE_EXPECTED_HOLDERS = {"DEFAULT_ADMIN_ROLE": [SAFE], "MINTER_ROLE": [SAFE]}
    _role_event("granted", "DEFAULT_ADMIN_ROLE", SAFE, 1)
    _role_event("granted", "MINTER_ROLE", STRANGER, 2)
    assert token_role_holders_check() == 1
    alert = _open(UNEXPECTED_ROLE_HOLDER, key=f"MINTER_ROLE:{STRANGER}")
    assert STRANGER in alert.detail
    _role_event("revoked", "MINTER_ROLE", STRANGER, 3)
    assert token_role_holders_check() == 0
    assert _open(UNEXPECTED_ROLE_HOLDER, key=f"MINTER_ROLE:{STRANGER}") is None


def test_without_the_setting_the_safe_and_the_minter_key_are_expected(settings):
    settings.CHAIN_ID = 31337
    settings.TOKEN_ROLE_EXPECTED_HOLDERS = {}
    settings.SAFE_ADDRESS = SAFE
    settings.MINTER_PRIVATE_KEY = "0x" + "11" * 32
    minter = Account.from_key(settings.MINTER_PRIVATE_KEY).address
    _role_event("granted", "PAUSER_ROLE", SAFE, 1)
    _role_event("granted", "MINTER_ROLE", minter, 2)
    assert token_role_holders_check() == 0
    _role_event("granted", "PAUSER_ROLE", minter, 3)  # the minter may mint, not pause
    assert token_role_holders_check() == 1


@pytest.mark.parametrize(
    "value",
    ['["0x' + "11" * 20 + '"]', '{"MINTER_ROLE": "0x' + "11" * 20 + '"}', "{not json"],
    ids=["a list", "not a list of addresses", "not JSON"],
)
def test_a_malformed_expected_holders_setting_refuses_to_start(monkeypatch, value):
    monkeypatch.setenv("TOKEN_ROLE_EXPECTED_HOLDERS", value)
    with pytest.raises(ImproperlyConfigured, match="TOKEN_ROLE_EXPECTED_HOLDERS"):
        read_address_map("TOKEN_ROLE_EXPECTED_HOLDERS")


def test_the_expected_holders_setting_is_read_lower_case(monkeypatch):
    monkeypatch.setenv("TOKEN_ROLE_EXPECTED_HOLDERS", '{"MINTER_ROLE": ["0x' + "AB" * 20 + '"]}')
    assert read_address_map("TOKEN_ROLE_EXPECTED_HOLDERS") == {"MINTER_ROLE": ["0x" + "ab" * 20]}


def test_the_alerts_check_task_is_scheduled_every_minute(settings):
    schedule = beat_schedule(settings.BEAT_INTERVALS_S)
    assert schedule["reconciliation.tasks.alerts_check"]["schedule"] == 60


def test_a_minted_deposit_whose_log_the_indexer_passed_is_a_missing_mint(amina, settings):  # noqa: F811
    settings.CHAIN_ID = 31337
    (deposit,) = _deposits(amina, 1, "minted")
    tx = "0x" + "ab" * 32
    MintLogClaim.objects.create(chain_id=31337, tx_hash=tx, log_index=0, deposit=deposit)
    IndexerCursor.objects.create(
        name="transfers",
        chain_id=31337,
        block_number=100,
        block_hash="0x" + "01" * 32,
        updated_at=now() + dt.timedelta(seconds=1),
    )
    assert missing_mints_check() == 1
    alert = _open(MISSING_MINT, key=str(deposit.pk))
    assert alert.deposit_id == deposit.pk and tx in alert.detail

    ChainTransfer.objects.create(
        chain_id=31337,
        tx_hash=tx,
        log_index=0,
        block_number=90,
        block_hash="0x" + "02" * 32,
        from_address="0x" + "00" * 20,
        to_address=deposit.wallet.address,
        amount_units=5_000 * 10**18,
        kind="mint",
    )
    assert missing_mints_check() == 0
    assert _open(MISSING_MINT, key=str(deposit.pk)) is None
