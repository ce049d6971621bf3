"""The Safe export (DESIGN §7.9): the exact call, the Transaction Builder batch file, and the
``SafeBatchExport`` written by every display or download."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.exceptions import ConflictError, PermissionRefused
from core.models import AdminAction
from deposits.services.transitions import deposit_hold_set
from minting.contract_artifact import deposit_ref
from minting.models import SafeBatchExport
from minting.services.safe import safe_batch_file, safe_mint_record
from tests.minting.test_safe_record import (
    receipt_of,
    safe_fixture,  # noqa: F401 - the `safe` fixture
)

UNITS = 10**18


@pytest.mark.django_db
def test_the_export_gives_the_exact_mint_for_deposit_call_and_a_batch_file(
    minting, paid_deposit, baraka, compliance, settings
):
    settings.SAFE_ADDRESS = "0x" + "5a" * 20
    first, second = paid_deposit(10_000), paid_deposit(25_000, user=baraka)

    result = safe_batch_file(
        deposit_ids=[first.pk, str(second.pk), first.pk], actor=compliance, safe_nonce=7
    )

    calls = result["calls"]
    assert [c["deposit_id"] for c in calls] == [str(first.pk), str(second.pk)]
    for call, deposit in zip(calls, (first, second), strict=True):
        ref = deposit_ref(deposit.pk)
        assert call["to"] == minting.address and call["value"] == "0"
        assert call["signature"] == "mintForDeposit(address,uint256,bytes32)"
        assert call["data"] == minting.contract.encode_abi(
            "mintForDeposit", args=[deposit.wallet.address, deposit.amount_tzs * UNITS, ref]
        )
        assert call["text"] == (
            f"mintForDeposit({deposit.wallet.address}, "
            f"{deposit.amount_tzs * UNITS}, 0x{ref.hex()}) on "
            f"{minting.address}"
        )
    batch = result["batch"]
    assert (batch["version"], batch["chainId"]) == ("1.0", "31337")
    assert batch["meta"]["createdFromSafeAddress"].lower() == settings.SAFE_ADDRESS
    assert batch["meta"]["checksum"].startswith("0x") and len(batch["meta"]["checksum"]) == 66
    assert "Propose it at Safe nonce 7." in batch["meta"]["description"]
    tx = batch["transactions"][1]
    assert (tx["to"], tx["value"], tx["data"]) == (minting.address, "0", calls[1]["data"])
    assert tx["contractMethod"] == {
        "name": "mintForDeposit",
        "payable": False,
        "inputs": [
            {"internalType": "address", "name": "to", "type": "address"},
            {"internalType": "uint256", "name": "amount", "type": "uint256"},
            {"internalType": "bytes32", "name": "depositRef", "type": "bytes32"},
        ],
    }
    assert tx["contractInputsValues"] == {
        "to": second.wallet.address,
        "amount": str(25_000 * UNITS),
        "depositRef": "0x" + deposit_ref(second.pk).hex(),
    }

    export = SafeBatchExport.objects.get()
    assert str(export.pk) == result["export_id"]
    assert set(export.deposits.all()) == {first, second}
    assert (export.safe_nonce, export.actor) == (7, compliance)
    assert export.payload["calls"] == calls and export.payload["batch"] == batch
    action = AdminAction.objects.get(action="safe.batch_file")
    assert (action.actor, action.target_id) == (compliance, str(export.pk))
    assert action.params["deposits"] == [str(first.pk), str(second.pk)]


@pytest.mark.django_db
def test_without_deposit_references_the_export_gives_a_plain_mint(
    minting, paid_deposit, superadmin, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit(10_000)
    (call,) = safe_batch_file(deposit_ids=[deposit.pk], actor=superadmin)["calls"]
    assert call["signature"] == "mint(address,uint256)"
    assert call["data"] == minting.contract.encode_abi(
        "mint", args=[deposit.wallet.address, 10_000 * UNITS]
    )
    export = SafeBatchExport.objects.get()
    assert export.safe_nonce is None and export.payload["with_ref"] is False


@pytest.mark.django_db
def test_every_export_is_recorded_even_a_repeat(minting, paid_deposit, compliance):
    deposit = paid_deposit(10_000)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance, safe_nonce=3)
    assert SafeBatchExport.objects.filter(deposits=deposit).count() == 2
    assert AdminAction.objects.filter(action="safe.batch_file").count() == 2


@pytest.mark.django_db
def test_the_exported_batch_executed_by_the_safe_is_recorded(
    safe, minting, paid_deposit, compliance
):
    deposit = paid_deposit(40_000)
    result = safe_batch_file(deposit_ids=[deposit.pk], actor=compliance)
    tx = result["batch"]["transactions"][0]
    tx_hash = safe.exec_call(tx["to"], bytes.fromhex(tx["data"][2:]))
    assert receipt_of(minting, tx_hash)["status"] == 1

    assert safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance) == "minted"
    assert minting.contract.functions.balanceOf(deposit.wallet.address).call() == 40_000 * UNITS


@pytest.mark.django_db
def test_only_safe_lane_deposits_that_are_not_held_are_exported(minting, paid_deposit, compliance):
    pending, held = paid_deposit(5_000), paid_deposit(10_000)
    deposit_hold_set(deposit_id=held.pk, reason="blacklisted recipient", source="worker")
    with pytest.raises(ConflictError) as caught:
        safe_batch_file(deposit_ids=[pending.pk], actor=compliance)
    assert str(caught.value) == (
        f"Deposit {pending.pk} is mint_pending; only a deposit in "
        "mint_requires_safe is minted through the Safe."
    )
    with pytest.raises(ConflictError) as caught:
        safe_batch_file(deposit_ids=[held.pk], actor=compliance)
    assert str(caught.value) == (
        f"Deposit {held.pk} is on hold (blacklisted recipient); "
        "release the hold before exporting its Safe payload."
    )
    assert not SafeBatchExport.objects.exists()


@pytest.mark.django_db
def test_a_customer_cannot_export(minting, paid_deposit, amina):
    deposit = paid_deposit(10_000)
    with pytest.raises(PermissionRefused):
        safe_batch_file(deposit_ids=[deposit.pk], actor=amina)
    assert not SafeBatchExport.objects.exists()


@pytest.mark.django_db
def test_the_command_prints_the_call_and_writes_the_batch_file(
    minting, paid_deposit, compliance, tmp_path, capsys
):
    deposit = paid_deposit(10_000)
    out = tmp_path / "batch.json"
    call_command(
        "safe_batch_file",
        str(deposit.pk),
        "--actor",
        compliance.email,
        "--safe-nonce",
        "4",
        "--out",
        str(out),
    )
    captured = capsys.readouterr()
    export = SafeBatchExport.objects.get()
    (call,) = export.payload["calls"]
    assert call["text"] in captured.err and call["data"] in captured.err
    assert f"Batch file written to {out}." in captured.out
    assert json.loads(out.read_text()) == export.payload["batch"]
    assert export.safe_nonce == 4


@pytest.mark.django_db
def test_the_command_refuses_with_one_sentence(minting, paid_deposit, compliance):
    deposit = paid_deposit(5_000)
    with pytest.raises(CommandError, match="only a deposit in mint_requires_safe"):
        call_command("safe_batch_file", str(deposit.pk), "--actor", compliance.email)
