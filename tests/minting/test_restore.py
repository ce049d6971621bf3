"""Restoring a backup taken in the middle of a mint run (DESIGN §14, docs runbook "Backups").

A ``pg_dump`` of the test database is taken while some mints are on chain but unconfirmed
and others are signed but not sent; the live system then goes on (the signed bytes land, more
deposits are minted) before it is "lost". The dump is restored into a fresh database with the
same server's binaries, and the worker commands run on the restored copy in a subprocess
until nothing is left to do. The chain is the backstop: every deposit is minted exactly once,
an attempt whose bytes are on chain is recorded and never re-signed, and a deposit minted
after the backup is found on chain rather than minted again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from core.crashpoints import SimulatedCrash
from deposits.models import DepositRequest
from minting.contract_artifact import deposit_ref
from minting.models import MintAttempt
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from tests.support.services import _pg_bindir

pytestmark = pytest.mark.slow

ZERO = "0x" + "00" * 20
AMOUNTS = [1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000]
WORKER_ROUNDS = 15

# Runs inside a worker subprocess on the restored database: the two worker commands, in
# turn, until every deposit is minted or minting is stopped (or the rounds are spent).
WORKER_SCRIPT = f"""
from django.core.management import call_command
from deposits.models import DepositRequest
from minting.models import SignerAccount
for number in range({WORKER_ROUNDS}):
    call_command("confirm_mints")
    call_command("process_mint_jobs", once=True)
    left = DepositRequest.objects.exclude(status="minted").count()
    stopped = SignerAccount.objects.filter(sending_enabled=False).exists()
    print(f"round {{number}}: {{left}} deposit(s) not minted yet, stopped={{stopped}}", flush=True)
    if not left or stopped:
        break
"""
STATUS_TABLE_SCRIPT = "from tests.minting.conftest import assert_status_table as check; check()"


def _pg(tool: str) -> str:
    return str(_pg_bindir() / tool)


def _conninfo(name: str) -> dict:
    db = connection.settings_dict
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": str(db["PORT"] or 5432),
        "user": db["USER"] or "postgres",
        "dbname": name,
    }


def _pg_args(info: dict) -> list[str]:
    return ["-h", info["host"], "-p", info["port"], "-U", info["user"]]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{cmd[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    """A management command in its own process, on the database ``env`` names."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(f"$ manage.py {args[0]}\n{result.stdout}")
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _worker_env(chain, database: dict) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": "postgres://{user}@{host}:{port}/{dbname}".format(**database),
            "BASE_SEPOLIA_RPC_URL": chain.url,
            "CHAIN_ID": "31337",
            "NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA": chain.address,
            "MINTER_PRIVATE_KEY": chain.minter_key,
            "SAFE_ADDRESS": "",
            "MINT_CONFIRMATIONS": "1",
            "MINT_BATCH_SIZE": "2",
        }
    )
    return env


def _facts(database: dict) -> dict:
    """What the restored books say, read straight from the restored database."""
    with psycopg.connect(**database) as db:
        statuses = dict(db.execute("SELECT id::text, status FROM deposits_depositrequest"))
        attempts: dict[str, list[tuple[str, str]]] = {}
        for deposit_id, tx_hash, status in db.execute(
            "SELECT mt.deposit_id::text, a.tx_hash, a.status FROM minting_mintattempt a "
            "JOIN minting_minttransaction mt ON mt.id = a.mint_transaction_id "
            "ORDER BY a.id"
        ):
            attempts.setdefault(deposit_id, []).append((tx_hash, status))
        claims = list(
            db.execute(
                "SELECT deposit_id::text, tx_hash, log_index FROM minting_mintlogclaim c "
                "WHERE NOT EXISTS (SELECT 1 FROM minting_mintlogclaim n "
                "WHERE n.supersedes_id = c.id)"
            )
        )
        minted_tzs = db.execute(
            "SELECT COALESCE(SUM(amount_tzs), 0) FROM deposits_depositrequest "
            "WHERE status = 'minted'"
        ).fetchone()[0]
    minted_tzs = int(minted_tzs)
    return {"statuses": statuses, "attempts": attempts, "claims": claims, "minted": minted_tzs}


def _attempts_now(deposits) -> dict[str, list[tuple[str, str]]]:
    return {
        str(d.pk): list(
            MintAttempt.objects.filter(mint_transaction__deposit=d)
            .order_by("pk")
            .values_list("tx_hash", "status")
        )
        for d in deposits
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "went_on", [False, True], ids=["lost-at-the-backup", "lost-after-more-mints"]
)
def test_a_dump_taken_mid_run_restores_and_every_deposit_is_minted_exactly_once(
    went_on, paid_deposit, minting, superadmin, settings, tmp_path
):
    settings.MINT_BATCH_SIZE = 2
    deposits = [paid_deposit(amount) for amount in AMOUNTS]
    on_chain_early, signed_unsent, minted_after, never_minted = (
        deposits[0:2],
        deposits[2:4],
        deposits[4:6],
        deposits[6:8],
    )

    # The run, interrupted: two mints sent and mined but not confirmed; two signed and
    # committed whose sender "died" before sending.
    mint_jobs_process(client_factory=mint_client)
    settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        mint_jobs_process(client_factory=mint_client)
    settings.CRASH_POINTS = set()
    before = _attempts_now(deposits)
    assert [len(before[str(d.pk)]) for d in deposits] == [1, 1, 1, 1, 0, 0, 0, 0]
    assert {s for d in on_chain_early for _, s in before[str(d.pk)]} == {"sent"}
    assert {s for d in signed_unsent for _, s in before[str(d.pk)]} == {"signed"}
    assert minting.contract.functions.totalSupply().call() == sum(AMOUNTS[0:2]) * 10**18

    # The backup, taken now.
    live = _conninfo(connection.settings_dict["NAME"])
    dump = tmp_path / "mid-run.dump"
    _run([_pg("pg_dump"), *_pg_args(live), "-Fc", "-f", str(dump), live["dbname"]])

    if went_on:
        # The live system goes on after the backup: the committed bytes are sent and land,
        # two more deposits are minted; then the database is lost.
        mints_confirm(client_factory=mint_client)
        mints_confirm(client_factory=mint_client)
        mint_jobs_process(client_factory=mint_client)
        mints_confirm(client_factory=mint_client)
        after_backup = _attempts_now(deposits)
        assert all(
            DepositRequest.objects.get(pk=d.pk).status == "minted"
            for d in [*on_chain_early, *signed_unsent, *minted_after]
        )
        for deposit in signed_unsent:  # the bytes signed before the backup are on chain
            assert after_backup[str(deposit.pk)][0][0] == before[str(deposit.pk)][0][0]

    # The restore, into a fresh database on the same server, with the same binaries.
    restored = _conninfo(f"restored_{uuid.uuid4().hex[:8]}")
    _run([_pg("createdb"), *_pg_args(restored), restored["dbname"]])
    try:
        _run(
            [
                _pg("pg_restore"),
                *_pg_args(restored),
                "--no-owner",
                "--exit-on-error",
                "-d",
                restored["dbname"],
                str(dump),
            ]
        )
        assert _facts(restored)["statuses"] == {
            str(d.pk): ("mint_processing" if i < 4 else "mint_pending")
            for i, d in enumerate(deposits)
        }

        env = _worker_env(minting, restored)
        first = _manage(env, "shell", "-c", WORKER_SCRIPT)
        facts = _facts(restored)
        if went_on:
            # The worker on the restored copy records what the backup knew was in flight,
            # then finds nonces of its key used after the backup (the mints of minted_after
            # it never heard of): it stops sending and alerts, as for a leaked key.
            assert "minter nonce used outside the system" in first.stdout + first.stderr
            assert Counter(facts["statuses"].values()) == {"minted": 4, "mint_pending": 4}
            # The operator's step after a restore (runbook): start minting, which resyncs
            # the nonce ledger from the chain; the worker then goes on to the end.
            started = _manage(
                env, "minting_start", "--actor", superadmin.email, "--reason", "restored"
            )
            assert "nonce ledger resynced from the chain" in started.stdout
            _manage(env, "shell", "-c", WORKER_SCRIPT)
            facts = _facts(restored)
        else:  # nothing happened after the backup: the worker alone goes to the end
            assert "stopped=True" not in first.stdout
        # DESIGN §4's statuses that go together, and the day's reservation ledger, hold in
        # the restored books too.
        _manage(env, "shell", "-c", STATUS_TABLE_SCRIPT)
    finally:
        subprocess.run(
            [_pg("dropdb"), *_pg_args(restored), "--if-exists", restored["dbname"]],
            capture_output=True,
        )

    # Every deposit minted in the restored books ...
    assert set(facts["statuses"].values()) == {"minted"}, json.dumps(facts, indent=1, default=str)
    # ... exactly once on chain: one Transfer from zero per deposit, the supply equals the books.
    transfers = minting.contract.events.Transfer().get_logs(from_block=minting.deploy_block)
    mints = [t for t in transfers if t["args"]["from"] == ZERO]
    assert len(mints) == len(deposits)
    assert minting.contract.functions.totalSupply().call() == facts["minted"] * 10**18
    assert facts["minted"] == sum(AMOUNTS)
    for deposit in deposits:
        assert minting.contract.functions.isDepositMinted(deposit_ref(deposit.pk)).call()
    on_chain = {("0x" + bytes(t["transactionHash"]).hex(), t["logIndex"]) for t in mints}
    assert {(tx, index) for _, tx, index in facts["claims"]} == on_chain
    assert sorted(d for d, _, _ in facts["claims"]) == sorted(str(d.pk) for d in deposits)
    # An attempt whose bytes were on chain (or were sent after the backup) is recorded with
    # those bytes, never signed again; a deposit minted after the backup is found, not signed.
    for deposit in [*on_chain_early, *signed_unsent]:
        assert facts["attempts"][str(deposit.pk)] == [
            (before[str(deposit.pk)][0][0], "mined_ok")
        ], deposit.pk
    for deposit in minted_after if went_on else []:
        assert str(deposit.pk) not in facts["attempts"], facts["attempts"].get(str(deposit.pk))
    for deposit in never_minted if went_on else [*minted_after, *never_minted]:
        # never signed before the loss: signed once, by the restored worker
        assert [status for _, status in facts["attempts"][str(deposit.pk)]] == ["mined_ok"]
