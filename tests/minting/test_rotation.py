"""The guided minter-key rotation (issue 15 point 5) on the local chain, through the real
pipeline runs (``mint_jobs_run``, ``confirm_run``) behind the Base-like proxy: deposits flow
before and after, a fee bump is made while sending is stopped (receipts, rebroadcasts and
bumps of signed attempts go on), every deposit is minted exactly once, the old key loses
MINTER_ROLE and the new key's SignerAccount signs the mints. Grant and revoke go through
``token_admin`` with an operator key holding DEFAULT_ADMIN_ROLE."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import time_machine
from django.db.models import Count

from core.exceptions import ConflictError, PermissionRefused, ServiceError
from core.models import AdminAction
from deposits.models import DepositRequest
from minting.breaker import rpc_breaker
from minting.chain import role_id
from minting.models import MintAttempt, MintLogClaim, SignerAccount
from minting.services.operator import mint_status, minting_sending_set
from minting.services.rotation import (
    NEW_KEY_WAITING,
    key_rotation_begin,
    key_rotation_current,
    key_rotation_finish,
    key_rotation_grant,
    key_rotation_revoke,
    key_rotation_start,
    key_rotation_steps,
    key_rotation_stop,
)
from minting.services.runner import confirm_run, mint_jobs_run
from minting.services.token_admin import token_admin_approve, token_admin_execute
from tests.factories import compliance_officer, super_admin
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

GWEI = 10**9
UNITS = 10**18
NEW_KEY, NEW = DEV_PRIVATE_KEYS[4], DEV_ADDRESSES[4]
OPERATOR_KEY, OPERATOR = DEV_PRIVATE_KEYS[7], DEV_ADDRESSES[7]
AS = MintAttempt.Status


@pytest.fixture
def superadmin_two(db):
    return super_admin(email="super2@ntzs.test", full_name="Zawadi Mrisho")


@pytest.fixture
def operator_admin(chain_settings, settings):
    """OPERATOR_PRIVATE_KEY: a dev key holding DEFAULT_ADMIN_ROLE (grantRole / revokeRole)."""
    chain_settings.transact(
        chain_settings.admin_key,
        chain_settings.contract.functions.grantRole(role_id("DEFAULT_ADMIN_ROLE"), OPERATOR),
    )
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    return chain_settings


@pytest.fixture
def pending_chain(base_proxy, minting, anvil_node, settings) -> Iterator:
    """As in test_fees: blocks only when the test mines one, the breaker reset, anvil's base
    fee and automine put back afterwards."""
    settings.CIRCUIT_OPEN_S = 0
    settings.MINT_FEE_BUMP_AFTER_S = 60
    rpc_breaker().reset()
    anvil_node.rpc("evm_setAutomine", False)
    try:
        yield anvil_node
    finally:
        anvil_node.rpc("anvil_setNextBlockBaseFeePerGas", hex(GWEI))
        anvil_node.rpc("evm_setAutomine", True)
        rpc_breaker().reset()


def steps() -> dict[str, bool]:
    rotation = key_rotation_current()
    return {step.name: step.done for step in key_rotation_steps(rotation=rotation)}


def has_minter_role(chain, address: str) -> bool:
    return chain.contract.functions.hasRole(role_id("MINTER_ROLE"), address).call()


def signer_of(deposit: DepositRequest) -> str:
    attempt = MintAttempt.objects.get(
        mint_transaction__deposit=deposit,
        status=AS.MINED_OK,
        kind__in=(MintAttempt.Kind.MINT, MintAttempt.Kind.FEE_BUMP),
    )
    return attempt.signer.address


def old_key_live() -> int:
    return MintAttempt.objects.filter(
        signer__address=DEV_ADDRESSES[1], status__in=(AS.SIGNED, AS.SENT)
    ).count()


@pytest.mark.django_db
def test_a_rotation_with_deposits_flowing_and_a_fee_bump_pending_mints_each_deposit_once(
    operator_admin, pending_chain, paid_deposit, chain, settings, superadmin, superadmin_two
):
    old = chain.minter_address
    supply_before = chain.contract.functions.totalSupply().call()
    start = dt.datetime.now(dt.UTC)

    # Before: two deposits minted by the old key.
    before = [paid_deposit(1_000), paid_deposit(1_100)]
    assert mint_jobs_run()["sent"] == {"sent": 2}
    pending_chain.rpc("evm_mine")
    confirm_run()
    assert DepositRequest.objects.filter(status="minted").count() == 2

    # Two more signed and sent, still pending when minting stops.
    in_flight = [paid_deposit(1_200), paid_deposit(1_300)]
    assert mint_jobs_run()["sent"] == {"sent": 2}
    first_pending = chain.w3.eth.get_transaction_count(old)

    key_rotation_begin(new_address=NEW, actor=superadmin, reason="yearly rotation")
    key_rotation_stop(actor=superadmin, reason="rotating to a new key")
    assert steps()["stop"] and not steps()["drain"]

    # A deposit paid while stopped waits, with the reason.
    waiting = paid_deposit(1_400)
    stopped = mint_jobs_run()
    assert stopped["signed"] == 0 and stopped["waiting"].startswith("sending is disabled")

    # The market spikes: anvil drops the priced-out mints. The confirm run still rebroadcasts
    # and bumps the lowest nonce while sending is stopped.
    pending_chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**13))
    pending_chain.rpc("evm_mine")
    with time_machine.travel(start + dt.timedelta(seconds=240), tick=False):
        counts = confirm_run()
    assert counts.get("fee_bump") == 1
    bump = MintAttempt.objects.get(kind=MintAttempt.Kind.FEE_BUMP)
    assert bump.nonce == first_pending and bump.signer.address == old

    pending_chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(GWEI))
    for step in range(1, 8):
        pending_chain.rpc("evm_mine")
        with time_machine.travel(start + dt.timedelta(seconds=240 + 120 * step), tick=False):
            confirm_run()
        if not old_key_live():
            break
    assert old_key_live() == 0
    for deposit in in_flight:
        deposit.refresh_from_db()
        assert deposit.status == "minted"
    assert steps()["drain"]

    # The rest in a later, ticking clock (attempts are ordered by when they were made).
    pending_chain.rpc("evm_setAutomine", True)
    with time_machine.travel(start + dt.timedelta(hours=1), tick=True):
        assert not steps()["grant"]
        grant = key_rotation_grant(actor=superadmin, reason="the new minter key")
        assert grant.lane == "four_eyes"
        dispatched = token_admin_approve(request_id=grant.request_id, checker=superadmin_two)
        assert dispatched.lane == "operator"
        assert token_admin_execute(action_id=dispatched.action_id) == "done"
        assert has_minter_role(chain, NEW) and steps()["grant"]

        # The worker restarted with the new key signs nothing before step 5.
        assert not steps()["switch"]
        settings.MINTER_PRIVATE_KEY = NEW_KEY
        assert steps()["switch"] and not steps()["start"]
        restarted = mint_jobs_run()
        assert restarted["signed"] == 0
        assert restarted["waiting"] == f"sending is disabled: {NEW_KEY_WAITING}"

        signer = key_rotation_start(actor=superadmin, reason="new key holds the role")
        assert signer.address == NEW and signer.sending_enabled
        assert signer.next_nonce == chain.w3.eth.get_transaction_count(NEW, "pending")
        assert steps()["start"]

        after = [paid_deposit(1_500)]
        assert mint_jobs_run()["signed"] == 2  # the one that waited, and the new one
        confirm_run()

        revoke = key_rotation_revoke(actor=superadmin, reason="the old key is retired")
        assert revoke.lane == "operator"
        assert token_admin_execute(action_id=revoke.action_id) == "done"
        assert not has_minter_role(chain, old)

        after.append(paid_deposit(1_600))
        assert mint_jobs_run()["signed"] == 1
        confirm_run()
        assert all(steps().values()), steps()
        key_rotation_finish(actor=superadmin, reason="all checks pass")
    assert key_rotation_current() is None

    deposits = [*before, *in_flight, waiting, *after]
    for deposit in deposits:
        deposit.refresh_from_db()
        assert deposit.status == "minted", deposit.pk
    # Exactly once: one claim per deposit, and the supply grew by exactly their sum.
    claims = MintLogClaim.objects.filter(deposit__in=deposits, superseded_by__isnull=True)
    assert claims.values("deposit").annotate(n=Count("pk")).filter(n__gt=1).count() == 0
    assert claims.count() == len(deposits)
    assert chain.contract.functions.totalSupply().call() - supply_before == (
        sum(d.amount_tzs for d in deposits) * UNITS
    )
    # The old key minted the first four (one through its fee bump), the new key the rest.
    assert [signer_of(d) for d in [*before, *in_flight]] == [old] * 4
    assert [signer_of(d) for d in [waiting, *after]] == [NEW] * 3
    assert not SignerAccount.objects.get(address=old).sending_enabled
    status = mint_status()  # the minting page shows the configured key's row, not the old one
    assert (status["signer"], status["sending_enabled"]) == (NEW, True)
    assert not has_minter_role(chain, old) and has_minter_role(chain, NEW)
    assert list(
        AdminAction.objects.filter(action="mint.key_rotation")
        .order_by("at")
        .values_list("outcome", flat=True)
    ) == ["begun", "finished"]


# --- Each step refuses what would go wrong ------------------------------------------------------


@pytest.fixture
def rotating(minting, chain, superadmin):
    key_rotation_begin(new_address=NEW, actor=superadmin, reason="rotation")
    return chain


@pytest.mark.django_db
def test_beginning_makes_the_new_keys_ledger_with_sending_off(minting, chain, superadmin):
    rotation = key_rotation_begin(new_address=NEW, actor=superadmin, reason="rotation")
    assert (rotation.old_address, rotation.new_address) == (chain.minter_address, NEW)
    row = SignerAccount.objects.get(address=NEW)
    assert not row.sending_enabled and row.disabled_reason == NEW_KEY_WAITING
    assert row.next_nonce == chain.w3.eth.get_transaction_count(NEW, "pending")
    with pytest.raises(ConflictError, match="already under way"):
        key_rotation_begin(new_address=DEV_ADDRESSES[5], actor=superadmin, reason="again")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "refusal"),
    [
        (DEV_ADDRESSES[1], "is the minter key already"),
        (OPERATOR, "is the operator key"),
        ("0x1234", "is not an address"),
    ],
)
def test_beginning_refuses_the_same_key_the_operator_key_or_no_address(
    minting, chain, superadmin, settings, address, refusal
):
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    with pytest.raises(ServiceError, match=refusal):
        key_rotation_begin(new_address=address, actor=superadmin, reason="rotation")
    assert key_rotation_current() is None


@pytest.mark.django_db
def test_only_a_super_admin_rotates(minting, chain, superadmin):
    with pytest.raises(PermissionRefused):
        key_rotation_begin(new_address=NEW, actor=compliance_officer(), reason="rotation")
    key_rotation_begin(new_address=NEW, actor=superadmin, reason="rotation")
    with pytest.raises(PermissionRefused):
        key_rotation_stop(actor=compliance_officer(email="c2@ntzs.test"), reason="stop")


@pytest.mark.django_db
def test_starting_is_refused_before_the_switch_and_without_the_role(rotating, superadmin, settings):
    with pytest.raises(ConflictError, match="MINTER_PRIVATE_KEY is not the new key"):
        key_rotation_start(actor=superadmin, reason="start")
    settings.MINTER_PRIVATE_KEY = NEW_KEY
    with pytest.raises(ConflictError, match="does not hold MINTER_ROLE yet"):
        key_rotation_start(actor=superadmin, reason="start")
    assert not SignerAccount.objects.get(address=NEW).sending_enabled


@pytest.mark.django_db
def test_the_minting_pages_start_cannot_start_the_new_key_around_the_rotation(
    rotating, superadmin, settings
):
    settings.MINTER_PRIVATE_KEY = NEW_KEY
    with pytest.raises(ConflictError, match="start it from the key rotation page"):
        minting_sending_set(enabled=True, reason="start", actor=superadmin)
    row = SignerAccount.objects.get(address=NEW)
    assert (row.sending_enabled, row.disabled_reason) == (False, NEW_KEY_WAITING)
    assert not AdminAction.objects.filter(action="mint.start").exists()


@pytest.mark.django_db
def test_start_and_revoke_are_refused_while_the_old_key_has_a_mint_in_flight(
    rotating, superadmin, settings, paid_deposit, anvil_node
):
    anvil_node.rpc("evm_setAutomine", False)
    try:
        paid_deposit(2_000)
        assert mint_jobs_run()["sent"] == {"sent": 1}
        key_rotation_stop(actor=superadmin, reason="stop")
        with pytest.raises(ConflictError, match="still has 1 transaction"):
            key_rotation_revoke(actor=superadmin, reason="revoke")
        settings.MINTER_PRIVATE_KEY = NEW_KEY
        with pytest.raises(ConflictError, match="still has 1 transaction"):
            key_rotation_start(actor=superadmin, reason="start")
    finally:
        anvil_node.rpc("evm_setAutomine", True)
    settings.MINTER_PRIVATE_KEY = DEV_PRIVATE_KEYS[1]
    anvil_node.rpc("evm_mine")
    confirm_run()  # the mint lands; the status table holds after the test


@pytest.mark.django_db
def test_finishing_is_refused_until_every_check_passes_and_abandoning_is_recorded(
    rotating, superadmin
):
    # The old key never signed here (nothing to stop or drain): the first open step is 3.
    with pytest.raises(ConflictError, match=r"step 3 \(Grant MINTER_ROLE to the new key\)"):
        key_rotation_finish(actor=superadmin, reason="done?")
    key_rotation_finish(actor=superadmin, reason="wrong new key", abandon=True)
    assert key_rotation_current() is None
    assert AdminAction.objects.filter(action="mint.key_rotation", outcome="abandoned").exists()
