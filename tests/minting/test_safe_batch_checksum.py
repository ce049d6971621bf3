"""The Safe Transaction Builder batch file: its checksum is the Builder's own (a golden value
published by the Builder), and ``safe_batch_file > f.json`` makes an importable file."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.management import call_command

from minting.models import SafeBatchExport
from minting.services.safe import batch_checksum, safe_batch_file

# safe-global/safe-react-apps, apps/tx-builder/src/lib/checksum.test.js ("Add checksum to
# BatchFile"): this batch file, and the checksum the Builder's addChecksum gives it. The
# Builder computes it with meta.checksum present and empty, as here.
BUILDER_FIXTURE = {
    "version": "1.0",
    "chainId": "4",
    "createdAt": 1646321521061,
    "meta": {
        "name": "test batch file",
        "txBuilderVersion": "1.4.0",
        "checksum": "",
        "createdFromSafeAddress": "0xDF8a1Ce35c9a6ACE153B4e0767942f1E2291a1Aa",
        "createdFromOwnerAddress": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6",
    },
    "transactions": [
        {
            "to": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6",
            "value": "0",
            "contractMethod": {
                "inputs": [{"internalType": "address", "name": "paramAddress", "type": "address"}],
                "name": "testAddress",
                "payable": False,
            },
            "contractInputsValues": {"paramAddress": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6"},
        },
        {
            "to": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6",
            "value": "0",
            "contractMethod": {
                "inputs": [{"internalType": "bool", "name": "paramBool", "type": "bool"}],
                "name": "testBool",
                "payable": False,
            },
            "contractInputsValues": {"paramAddress": "", "paramBool": "false"},
        },
        {
            "to": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6",
            "value": "2000000000000000000",
            "data": "0x42f4579000000000000000000000000049d4450977e2c95362c13d3a31a09311e0ea26a6",
        },
    ],
}
BUILDER_CHECKSUM = "0x4ecbfd364aa6759983915644e73f8bd411e85a2dc306f252a387c2728c4db64c"


def _reversed_keys(value):
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_the_checksum_matches_the_builders_published_value():
    assert batch_checksum(BUILDER_FIXTURE) == BUILDER_CHECKSUM


def test_the_checksum_ignores_key_order_and_the_name_but_not_the_transaction_order():
    renamed = copy.deepcopy(BUILDER_FIXTURE)
    renamed["meta"]["name"] = "another name"
    reordered = copy.deepcopy(BUILDER_FIXTURE)
    reordered["transactions"].reverse()

    assert batch_checksum(_reversed_keys(BUILDER_FIXTURE)) == BUILDER_CHECKSUM
    assert batch_checksum(renamed) == BUILDER_CHECKSUM
    assert batch_checksum(reordered) != BUILDER_CHECKSUM


def _builder_validates(batch: dict) -> bool:
    # The Builder's validateChecksum: remove meta.checksum, compute, compare.
    target = copy.deepcopy(batch)
    checksum = target["meta"].pop("checksum")
    return batch_checksum(target) == checksum


@pytest.mark.django_db
def test_an_exported_batch_file_passes_the_builders_validation(
    minting, paid_deposit, compliance, settings
):
    settings.SAFE_ADDRESS = "0x" + "5a" * 20
    batch = safe_batch_file(deposit_ids=[paid_deposit(10_000).pk], actor=compliance)["batch"]

    assert _builder_validates(batch)
    batch["transactions"][0]["value"] = "1"
    assert not _builder_validates(batch)


@pytest.mark.django_db
def test_the_command_writes_only_the_batch_json_to_stdout(
    minting, paid_deposit, compliance, capsys
):
    deposit = paid_deposit(10_000)

    call_command("safe_batch_file", str(deposit.pk), "--actor", compliance.email)

    captured = capsys.readouterr()
    export = SafeBatchExport.objects.get()
    assert json.loads(captured.out) == export.payload["batch"]  # `> f.json` is importable
    (call,) = export.payload["calls"]
    assert call["text"] in captured.err and call["data"] in captured.err
    assert _builder_validates(json.loads(captured.out))
