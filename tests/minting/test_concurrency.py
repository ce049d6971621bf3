"""Exactly once under concurrency: 200 paid deposits, 4 workers claiming, signing, sending
and confirming at the same time against the real token."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from deposits.models import DepositRequest
from minting.models import MintAttempt, MintLogClaim
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from tests.minting.conftest import assert_status_table

DEPOSITS = 200
WORKERS = 4


def _worker(stop: threading.Event, errors: list) -> None:
    try:
        while not stop.is_set():
            mint_jobs_process(client_factory=mint_client)
            mints_confirm(client_factory=mint_client)
    except Exception as exc:
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_200_deposits_4_workers_each_minted_exactly_once(paid_deposit, minting, settings):
    settings.MINT_BATCH_SIZE = 25
    deposits = [paid_deposit(1_000 + i) for i in range(DEPOSITS)]
    stop, errors = threading.Event(), []
    workers = [threading.Thread(target=_worker, args=(stop, errors)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not errors:
        if DepositRequest.objects.filter(status="minted").count() == DEPOSITS:
            break
        time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.join()
    assert errors == []
    assert DepositRequest.objects.filter(status="minted").count() == DEPOSITS

    total_units = sum(d.amount_tzs for d in deposits) * 10**18
    assert minting.contract.functions.totalSupply().call() == total_units
    transfers = minting.contract.events.Transfer().get_logs(from_block=0)
    mints = [t for t in transfers if t["args"]["from"] == "0x" + "00" * 20]
    assert len(mints) == DEPOSITS
    claims = set(MintLogClaim.objects.values_list("tx_hash", "log_index"))
    assert claims == {("0x" + bytes(t["transactionHash"]).hex(), t["logIndex"]) for t in mints}
    assert MintLogClaim.objects.values("deposit").distinct().count() == DEPOSITS
    statuses = list(MintAttempt.objects.values_list("kind", "status", "error"))
    assert MintAttempt.objects.filter(status="mined_ok").count() == DEPOSITS, [
        s for s in statuses if s[1] != "mined_ok"
    ]
    assert_status_table()
