"""MINT_LANE (DESIGN §10, issue 15 point 5): "route everything to the Safe" is one switch,
the environment's default or a super admin's runtime override under four eyes. With
``safe_only`` the deposits still waiting in ``mint_pending`` go to ``mint_requires_safe`` at
the next pipeline run, a transition row each, and new confirmations go there directly;
switched back, new confirmations go to the worker lane and mint. Real PostgreSQL, the real
pipeline on the local chain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.models import AdminAction, DualControlRequest, RuntimeSetting
from core.selectors import mint_lane_effective
from core.services import dual_control_approve
from deposits.models import DepositRequest, DepositTransition
from minting.models import MintAttempt, MintTransaction
from minting.services.confirm import mints_confirm
from minting.services.lanes import mint_lane_request
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client, mint_jobs_run
from tests.factories import super_admin
from tests.minting.test_lanes import failed_deposit

REPO = Path(__file__).resolve().parents[2]
S = DepositRequest.Status
UNITS = 10**18


@pytest.fixture
def checker(db):
    """A second super admin: the checker of the first one's switch."""
    return super_admin(email="super2@ntzs.test", full_name="Rehema Mushi")


def run_pipeline():
    return mint_jobs_process(client_factory=mint_client)


def status_of(deposit) -> str:
    deposit.refresh_from_db()
    return deposit.status


def switch(lane: str, *, maker, checker) -> DualControlRequest:
    request = mint_lane_request(lane=lane, actor=maker, reason="incident INC-2026-12-001")
    return dual_control_approve(request_id=request.pk, checker=checker)


def lane_transitions(deposit) -> list[DepositTransition]:
    return list(DepositTransition.objects.filter(deposit=deposit, to_status=S.MINT_REQUIRES_SAFE))


def assert_routed_by_the_lane(deposit) -> None:
    """Exactly one transition row into the Safe lane: the system's, from mint_pending."""
    [row] = lane_transitions(deposit)
    assert (row.from_status, row.source, row.actor, row.note) == (
        S.MINT_PENDING,
        DepositTransition.Source.SYSTEM,
        None,
        "MINT_LANE is safe_only",
    )


# --- The runtime override under four eyes -----------------------------------------------------


@pytest.mark.django_db
def test_safe_only_routes_the_three_waiting_deposits_at_the_next_run_and_signs_nothing(
    minting, paid_deposit, superadmin, checker
):
    waiting = [paid_deposit(5_000 + i) for i in range(3)]
    assert {status_of(d) for d in waiting} == {S.MINT_PENDING}
    supply = minting.contract.functions.totalSupply().call()

    switch("safe_only", maker=superadmin, checker=checker)
    assert mint_lane_effective().lane == "safe_only"
    # Nothing moved at approval: the next run routes them.
    assert {status_of(d) for d in waiting} == {S.MINT_PENDING}

    result = run_pipeline()

    assert (result.routed_to_safe, result.signed) == (3, 0)
    assert {status_of(d) for d in waiting} == {S.MINT_REQUIRES_SAFE}
    for deposit in waiting:
        assert_routed_by_the_lane(deposit)
    assert MintAttempt.objects.count() == 0
    assert minting.contract.functions.totalSupply().call() == supply
    # A second run finds nothing to route and signs nothing.
    again = run_pipeline()
    assert (again.routed_to_safe, again.signed) == (0, 0)


@pytest.mark.django_db
def test_under_safe_only_a_new_confirmation_goes_to_the_safe_lane_directly(
    minting, paid_deposit, superadmin, checker
):
    switch("safe_only", maker=superadmin, checker=checker)
    deposit = paid_deposit(1_000)  # far below SAFE_MINT_THRESHOLD_TZS
    assert status_of(deposit) == S.MINT_REQUIRES_SAFE
    [row] = lane_transitions(deposit)
    assert row.from_status == S.SUBMITTED
    assert run_pipeline().signed == 0
    assert status_of(deposit) == S.MINT_REQUIRES_SAFE


@pytest.mark.django_db
def test_switched_back_to_auto_new_confirmations_mint_and_the_safe_lane_stays(
    minting, paid_deposit, superadmin, checker
):
    routed = paid_deposit(5_000)
    switch("safe_only", maker=superadmin, checker=checker)
    run_pipeline()
    assert status_of(routed) == S.MINT_REQUIRES_SAFE

    switch("auto", maker=checker, checker=superadmin)  # either may make, the other checks
    assert mint_lane_effective().lane == "auto"
    fresh = paid_deposit(2_000)
    assert status_of(fresh) == S.MINT_PENDING
    assert run_pipeline().signed == 1
    mints_confirm(client_factory=mint_client)
    assert status_of(fresh) == S.MINTED
    assert minting.contract.functions.balanceOf(fresh.wallet.address).call() == 2_000 * UNITS
    # Routing back is a person's action (mint_route_to_worker), never the switch's.
    assert status_of(routed) == S.MINT_REQUIRES_SAFE
    # The threshold rule applies again.
    assert status_of(paid_deposit(10_000)) == S.MINT_REQUIRES_SAFE


@pytest.mark.django_db
def test_a_deposit_already_claimed_into_a_batch_finishes_in_the_worker_lane(
    minting, paid_deposit, superadmin, checker
):
    claimed = paid_deposit(5_000)
    assert run_pipeline().signed == 1
    assert status_of(claimed) == S.MINT_PROCESSING
    switch("safe_only", maker=superadmin, checker=checker)
    assert run_pipeline().routed_to_safe == 0
    assert status_of(claimed) == S.MINT_PROCESSING
    mints_confirm(client_factory=mint_client)  # receipts go on under safe_only
    assert status_of(claimed) == S.MINTED
    assert not lane_transitions(claimed)


@pytest.mark.django_db
def test_a_failed_deposit_is_left_for_a_person_to_route(
    minting, paid_deposit, superadmin, checker, settings
):
    failed = failed_deposit(paid_deposit, minting, settings)
    switch("safe_only", maker=superadmin, checker=checker)
    assert run_pipeline().routed_to_safe == 0
    assert status_of(failed) == S.MINT_FAILED


@pytest.mark.django_db
def test_a_cap_deferred_deposit_is_routed_and_its_worker_mint_abandoned(
    minting, paid_deposit, superadmin, checker, settings
):
    settings.DAILY_ISSUANCE_CAP_TZS = 4_000
    deferred = paid_deposit(5_000)
    assert run_pipeline().deferred == 1
    assert MintTransaction.objects.get(deposit=deferred).status == "cap_exceeded"
    switch("safe_only", maker=superadmin, checker=checker)
    assert run_pipeline().routed_to_safe == 1
    assert status_of(deferred) == S.MINT_REQUIRES_SAFE
    mint = MintTransaction.objects.get(deposit=deferred)
    assert (mint.status, mint.error) == (
        "failed",
        "routed to the Safe lane: MINT_LANE is safe_only",
    )


@pytest.mark.django_db
def test_the_worker_task_routes_before_the_breaker_and_reports_it(
    minting, paid_deposit, superadmin, checker
):
    waiting = [paid_deposit(3_000), paid_deposit(4_000)]
    switch("safe_only", maker=superadmin, checker=checker)
    assert mint_jobs_run() == {"routed_to_safe": 2}
    assert {status_of(d) for d in waiting} == {S.MINT_REQUIRES_SAFE}
    assert mint_jobs_run() == {"idle": 1}


# --- The environment's default ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_environment_default_alone_does_the_same(minting, paid_deposit, settings):
    waiting = [paid_deposit(5_000 + i) for i in range(3)]
    settings.MINT_LANE = "safe_only"
    state = mint_lane_effective()
    assert (state.lane, state.overridden) == ("safe_only", False)

    result = run_pipeline()

    assert (result.routed_to_safe, result.signed) == (3, 0)
    for deposit in waiting:
        assert status_of(deposit) == S.MINT_REQUIRES_SAFE
        assert_routed_by_the_lane(deposit)
    assert status_of(paid_deposit(1_000)) == S.MINT_REQUIRES_SAFE
    assert MintAttempt.objects.count() == 0

    settings.MINT_LANE = "auto"
    fresh = paid_deposit(2_000)
    assert status_of(fresh) == S.MINT_PENDING
    assert run_pipeline().signed == 1
    mints_confirm(client_factory=mint_client)
    assert status_of(fresh) == S.MINTED


@pytest.mark.django_db
def test_an_override_wins_over_the_environment_until_cleared(
    minting, paid_deposit, superadmin, checker, settings
):
    settings.MINT_LANE = "safe_only"
    switch("auto", maker=superadmin, checker=checker)
    state = mint_lane_effective()
    assert (state.lane, state.environment_lane, state.overridden) == ("auto", "safe_only", True)
    assert (state.requested_by, state.changed_by) == (superadmin, checker)
    assert status_of(paid_deposit(1_000)) == S.MINT_PENDING

    switch("environment", maker=checker, checker=superadmin)
    state = mint_lane_effective()
    assert (state.lane, state.overridden) == ("safe_only", False)
    assert RuntimeSetting.objects.get(key="MINT_LANE").value == ""
    assert status_of(paid_deposit(1_000)) == S.MINT_REQUIRES_SAFE


# --- Who may switch, and the audit ------------------------------------------------------------


@pytest.mark.django_db
def test_the_switch_is_audited_with_maker_and_checker(superadmin, checker):
    request = switch("safe_only", maker=superadmin, checker=checker)
    made = AdminAction.objects.get(action="mint_lane_set.request")
    approved = AdminAction.objects.get(action="mint_lane_set.approve")
    applied = AdminAction.objects.get(action="mint_lane.set")
    assert (made.actor, approved.actor, applied.actor) == (superadmin, checker, checker)
    assert applied.params == {
        "request_id": str(request.pk),
        "maker": str(superadmin.pk),
        "from": "environment",
        "to": "safe_only",
        "effective": "safe_only",
    }
    assert applied.reason == "incident INC-2026-12-001"
    row = RuntimeSetting.objects.get(key="MINT_LANE")
    assert (row.value, row.changed_by, row.request_id) == ("safe_only", checker, request.pk)


@pytest.mark.django_db
def test_the_maker_cannot_approve_their_own_switch(superadmin):
    request = mint_lane_request(lane="safe_only", actor=superadmin, reason="key exposed")
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=superadmin)
    request.refresh_from_db()
    assert request.decision == "pending"
    assert mint_lane_effective().lane == "auto"
    assert not RuntimeSetting.objects.exists()


@pytest.mark.django_db
def test_a_non_super_admin_can_neither_request_nor_approve_it(compliance, superadmin):
    with pytest.raises(PermissionRefused, match="super_admin"):
        mint_lane_request(lane="safe_only", actor=compliance, reason="incident")
    assert not DualControlRequest.objects.exists()
    request = mint_lane_request(lane="safe_only", actor=superadmin, reason="incident")
    with pytest.raises(PermissionRefused, match="super_admin"):
        dual_control_approve(request_id=request.pk, checker=compliance)
    assert mint_lane_effective().lane == "auto"


@pytest.mark.django_db
def test_a_switch_that_would_change_nothing_or_names_no_lane_is_refused(superadmin, checker):
    with pytest.raises(ServiceError, match="auto or safe_only"):
        mint_lane_request(lane="worker_only", actor=superadmin, reason="typo")
    with pytest.raises(ConflictError, match="no runtime override to clear"):
        mint_lane_request(lane="environment", actor=superadmin, reason="tidy")
    with pytest.raises(ServiceError, match="needs a reason"):
        mint_lane_request(lane="safe_only", actor=superadmin, reason=" ")
    mint_lane_request(lane="safe_only", actor=superadmin, reason="incident")
    with pytest.raises(ConflictError, match="already waiting for a checker"):
        mint_lane_request(lane="auto", actor=checker, reason="other idea")
    assert DualControlRequest.objects.count() == 1


@pytest.mark.django_db
def test_a_request_for_the_lane_already_overridden_is_refused(superadmin, checker):
    switch("safe_only", maker=superadmin, checker=checker)
    with pytest.raises(ConflictError, match="already overridden to safe_only"):
        mint_lane_request(lane="safe_only", actor=checker, reason="again")


@pytest.mark.django_db
def test_the_command_makes_the_request_and_a_second_super_admin_applies_it(
    superadmin, checker, capsys
):
    call_command(
        "mint_lane", "--set", "safe_only", "--actor", superadmin.email, "--reason", "key rotation"
    )
    out = capsys.readouterr().out
    assert "MINT_LANE is auto (the environment). The switch to safe_only is requested" in out
    request = DualControlRequest.objects.get(action="mint_lane_set")
    assert (request.maker, request.params) == (superadmin, {"lane": "safe_only"})
    assert mint_lane_effective().lane == "auto"
    dual_control_approve(request_id=request.pk, checker=checker)
    assert mint_lane_effective().lane == "safe_only"


@pytest.mark.django_db
def test_the_command_refuses_a_non_super_admin_in_one_sentence(compliance):
    with pytest.raises(CommandError, match="may not switch MINT_LANE"):
        call_command(
            "mint_lane", "--set", "safe_only", "--actor", compliance.email, "--reason", "x"
        )


# --- The setting --------------------------------------------------------------------------------


def _start_with(mint_lane: str | None, tmp_path) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "NTZS_VAR_DIR": str(tmp_path),
    }
    if mint_lane is not None:
        env["MINT_LANE"] = mint_lane
    code = (
        "import django; django.setup(); from django.conf import settings as s; print(s.MINT_LANE)"
    )
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("value", "read"), [(None, "auto"), ("SAFE_ONLY", "safe_only")])
def test_mint_lane_is_read_from_the_environment(tmp_path, value, read):
    result = _start_with(value, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == read


def test_any_other_mint_lane_refuses_to_start(tmp_path):
    result = _start_with("safe", tmp_path)
    assert result.returncode != 0
    assert "MINT_LANE must be auto or safe_only, not 'safe'." in result.stderr
