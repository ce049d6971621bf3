"""Operator commands tell the truth and leave an audit trail (issue 9, point 7): a retry that
finds an earlier mint landed is audited; ``minting_start`` refuses a resync while mints are in
flight; ``mint_retry A B C`` reports every deposit and goes on past a refusal; an unreachable
chain is one sentence."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from core.crashpoints import SimulatedCrash
from core.models import AdminAction
from deposits.models import DepositRequest
from minting.models import DailyIssuance, MintTransaction, SignerAccount


def status_of(deposit) -> str:
    return DepositRequest.objects.get(pk=deposit.pk).status


def _process_and_confirm() -> None:
    call_command("process_mint_jobs", once=True)
    call_command("confirm_mints")


def _reservations_match_the_forced_statuses() -> None:
    """A status forced by hand below released its reservation by hand: the ledger follows."""
    for day in DailyIssuance.objects.all():
        held = (
            MintTransaction.objects.filter(reserved_day=day.day).aggregate(t=Sum("reserved_tzs"))[
                "t"
            ]
            or 0
        )
        DailyIssuance.objects.filter(day=day.day).update(reserved_tzs=held)


def _reverted_to_mint_failed(paid_deposit, minting, settings, count: int):
    """``count`` deposits whose signed mint lands and reverts on chain (the recipient was
    blacklisted after signing): mint_failed with the proof, then the recipient is cleared."""
    deposits = [paid_deposit(1_000 + i) for i in range(count)]
    wallet = deposits[0].wallet.address
    settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        call_command("process_mint_jobs", once=True)
    settings.CRASH_POINTS = set()
    minting.transact(minting.admin_key, minting.contract.functions.blacklist(wallet))
    call_command("confirm_mints")  # sends the committed bytes: they revert
    call_command("confirm_mints")
    assert [status_of(d) for d in deposits] == ["mint_failed"] * count
    minting.transact(minting.admin_key, minting.contract.functions.unblacklist(wallet))
    return deposits


@pytest.mark.django_db
def test_a_human_retry_that_finds_the_earlier_mint_landed_writes_its_admin_action(
    paid_deposit, minting, superadmin, capsys
):
    deposit = paid_deposit()
    minting.node.rpc("evm_setAutomine", False)
    try:
        call_command("process_mint_jobs", once=True)  # sent, not mined
        DepositRequest.objects.filter(pk=deposit.pk).update(status="mint_failed")
        MintTransaction.objects.filter(deposit=deposit).update(status="failed", reserved_tzs=0)
    finally:
        minting.node.rpc("evm_setAutomine", True)
        minting.node.rpc("evm_mine")  # the earlier attempt lands
    capsys.readouterr()
    call_command("mint_retry", str(deposit.pk), actor=superadmin.email)
    assert capsys.readouterr().out.splitlines() == [f"{deposit.pk}: minted"]
    assert status_of(deposit) == "minted"
    action = AdminAction.objects.get(action="mint.retry")
    assert (action.actor, action.target_id) == (superadmin, str(deposit.pk))
    assert action.outcome == "minted"
    assert action.params["tx_hash"] == MintTransaction.objects.get(deposit=deposit).tx_hash
    _reservations_match_the_forced_statuses()


@pytest.mark.django_db
def test_minting_start_with_attempts_in_flight_exits_non_zero_and_changes_nothing(
    paid_deposit, minting, superadmin, capsys
):
    deposit = paid_deposit()
    minting.node.rpc("evm_setAutomine", False)
    try:
        call_command("process_mint_jobs", once=True)  # sent, not mined: in flight
        call_command("minting_stop", reason="incident", actor=superadmin.email)
        before = SignerAccount.objects.values("next_nonce", "last_mined_nonce").get()
        with pytest.raises(
            CommandError, match=r"1 mint transaction\(s\) are still in flight \(nonces \d+\)"
        ) as refused:
            call_command("minting_start", reason="incident over", actor=superadmin.email)
        assert "\n" not in str(refused.value)
        signer = SignerAccount.objects.get()
        assert signer.sending_enabled is False
        assert {"next_nonce": signer.next_nonce, "last_mined_nonce": signer.last_mined_nonce} == (
            before
        )
        assert not AdminAction.objects.filter(action="mint.start").exists()
        capsys.readouterr()
        call_command(
            "minting_start", reason="incident over", keep_ledger=True, actor=superadmin.email
        )
        assert "nonce ledger kept" in capsys.readouterr().out
        assert SignerAccount.objects.get().sending_enabled is True
    finally:
        minting.node.rpc("evm_setAutomine", True)
        minting.node.rpc("evm_mine")
    call_command("confirm_mints")
    assert status_of(deposit) == "minted"


@pytest.mark.django_db
def test_minting_start_with_nothing_in_flight_resyncs_the_ledger(
    paid_deposit, minting, superadmin, capsys
):
    call_command("minting_stop", reason="rotation", actor=superadmin.email)
    minting.transact(  # a transaction made with the minter key outside the system
        minting.minter_key,
        minting.contract.functions.transfer(minting.admin_address, 0),
    )
    pending = minting.w3.eth.get_transaction_count(minting.minter_address, "pending")
    call_command("minting_start", reason="checked", actor=superadmin.email)
    signer = SignerAccount.objects.get()
    assert signer.next_nonce == signer.last_mined_nonce == pending
    assert f"nonce ledger resynced from the chain (next nonce {pending})" in (
        capsys.readouterr().out
    )


@pytest.mark.django_db
def test_mint_retry_a_b_c_with_b_refused_queues_a_and_c_and_prints_three_lines(
    paid_deposit, minting, settings, superadmin, capsys
):
    a, c = _reverted_to_mint_failed(paid_deposit, minting, settings, count=2)
    b = uuid.uuid4()  # no such deposit
    capsys.readouterr()
    with pytest.raises(CommandError, match=r"1 of 3 deposit\(s\) could not be retried"):
        call_command("mint_retry", str(a.pk), str(b), str(c.pk), actor=superadmin.email)
    assert capsys.readouterr().out.splitlines() == [
        f"{a.pk}: queued",
        f"{b}: refused: There is no deposit {b}.",
        f"{c.pk}: queued",
    ]
    assert [status_of(a), status_of(c)] == ["mint_pending", "mint_pending"]
    assert AdminAction.objects.filter(action="mint.retry").count() == 2
    _process_and_confirm()
    assert [status_of(a), status_of(c)] == ["minted", "minted"]


@pytest.mark.django_db
def test_with_the_chain_unreachable_operator_commands_answer_in_one_sentence(
    paid_deposit, minting, superadmin, settings
):
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    for name, args in (
        ("mint_retry", [str(uuid.uuid4())]),
        ("minting_start", []),
        ("check_minter", []),
    ):
        options = {"reason": "x"} if name == "minting_start" else {}
        if name != "check_minter":
            options["actor"] = superadmin.email
        with pytest.raises(CommandError) as refused:
            call_command(name, *args, **options)
        message = str(refused.value)
        assert message and "\n" not in message and "Traceback" not in message, (name, message)
