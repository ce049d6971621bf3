"""Append-only in the database (DESIGN §4, §14.5): raw SQL cannot update or delete a
reconciliation entry, a mint log claim, a deposit transition or an admin action, on
PostgreSQL (the test database) and on SQLite (a fresh file migrated in a subprocess, the way
`make dev` builds its database); and a claim names a deposit or an entry."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from core.services import admin_action_record
from deposits.models import DepositTransition
from minting.models import MintLogClaim
from reconciliation.models import ReconciliationEntry
from tests.deposits.conftest import (  # noqa: F401 - shared personas and banks
    amina,
    make_deposit,
    settlement_bank,
)
from tests.factories import super_admin

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "entry": "reconciliation_reconciliationentry",
    "claim": "minting_mintlogclaim",
    "transition": "deposits_deposittransition",
    "admin_action": "core_adminaction",
}
CHANGES = {
    "entry": "SET reason = 'rewritten'",
    "claim": "SET log_index = log_index + 1",
    "transition": "SET note = 'rewritten'",
    "admin_action": "SET reason = 'rewritten'",
}


@pytest.fixture
def one_of_each(make_deposit):  # noqa: F811 - the imported fixture
    maker = super_admin(email="maker@ntzs.test")
    checker = super_admin(email="checker@ntzs.test")
    deposit = make_deposit()
    entry = ReconciliationEntry.objects.create(
        chain_id=31337,
        tx_hash="0x" + "ab" * 32,
        log_index=0,
        amount_units=10**18,
        entry_type="test_mint",
        reason="a test mint",
        created_by=maker,
        approved_by=checker,
    )
    MintLogClaim.objects.create(
        chain_id=31337, tx_hash=entry.tx_hash, log_index=0, reconciliation_entry_id=entry.pk
    )
    admin_action_record(actor=maker, action="test", target_type="test", target_id="1")
    assert DepositTransition.objects.filter(deposit=deposit).exists()
    return entry


@pytest.mark.django_db
@pytest.mark.parametrize("what", sorted(TABLES))
@pytest.mark.parametrize("verb", ["update", "delete"])
def test_raw_sql_cannot_update_or_delete_on_postgresql(one_of_each, what, verb):
    table = TABLES[what]
    sql = f"UPDATE {table} {CHANGES[what]}" if verb == "update" else f"DELETE FROM {table}"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
        assert cursor.fetchone()[0] >= 1


@pytest.mark.django_db
def test_a_claim_naming_neither_a_deposit_nor_an_entry_is_refused_on_postgresql():
    with pytest.raises(DatabaseError), transaction.atomic():
        MintLogClaim.objects.create(chain_id=31337, tx_hash="0x" + "cd" * 32, log_index=0)
    assert MintLogClaim.objects.count() == 0


# --- SQLite --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_database(tmp_path_factory) -> Path:
    """Every migration applied to a fresh SQLite file by ``manage.py migrate`` (the local
    profile), so a later migration that rebuilt a table without its triggers fails here."""
    var_dir = tmp_path_factory.mktemp("sqlite")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "NTZS_VAR_DIR": str(var_dir),
    }
    result = subprocess.run(
        # the system checks are another test's business: this one proves the migrations
        [sys.executable, "manage.py", "migrate", "--verbosity", "0", "--skip-checks"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return var_dir / "db.sqlite3"


def _sqlite_rows(db: sqlite3.Connection) -> None:
    """One row in each table, written by raw SQL (foreign keys are off on a raw connection:
    the rows only need to exist)."""
    user_a, user_b, deposit = (uuid.uuid4().hex for _ in range(3))
    at = "2026-12-02 10:00:00"
    db.execute(
        "INSERT INTO reconciliation_reconciliationentry (id, chain_id, tx_hash, log_index, "
        "to_address, amount_units, entry_type, reason, notes, created_at, approved_by_id, "
        "created_by_id) VALUES (?, 31337, ?, 0, '', '1', 'test_mint', 'r', '', ?, ?, ?)",
        (uuid.uuid4().hex, "0x" + "ab" * 32, at, user_b, user_a),
    )
    db.execute(
        "INSERT INTO minting_mintlogclaim (chain_id, tx_hash, log_index, claimed_at, "
        "deposit_id) VALUES (31337, ?, 0, ?, ?)",
        ("0x" + "ab" * 32, at, deposit),
    )
    db.execute(
        "INSERT INTO deposits_deposittransition (from_status, to_status, source, note, "
        "metadata, at, deposit_id) VALUES ('', 'submitted', 'user', '', '{}', ?, ?)",
        (at, deposit),
    )
    db.execute(
        "INSERT INTO core_adminaction (id, action, target_type, target_id, params, outcome, "
        "reason, at, actor_id) VALUES (?, 'test', 'test', '1', '{}', 'done', '', ?, ?)",
        (uuid.uuid4().hex, at, user_a),
    )
    db.commit()


@pytest.mark.slow
def test_raw_sql_cannot_update_or_delete_on_sqlite(sqlite_database):
    db = sqlite3.connect(sqlite_database)
    try:
        _sqlite_rows(db)
        for what, table in TABLES.items():
            for sql in (f"UPDATE {table} {CHANGES[what]}", f"DELETE FROM {table}"):
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    db.execute(sql)
                db.rollback()
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1  # noqa: S608
    finally:
        db.close()


@pytest.mark.slow
def test_a_claim_naming_neither_a_deposit_nor_an_entry_is_refused_on_sqlite(sqlite_database):
    db = sqlite3.connect(sqlite_database)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="must name a deposit or an entry"):
            db.execute(
                "INSERT INTO minting_mintlogclaim (chain_id, tx_hash, log_index, claimed_at) "
                "VALUES (31337, ?, 1, '2026-12-02 10:00:00')",
                ("0x" + "ef" * 32,),
            )
    finally:
        db.close()
