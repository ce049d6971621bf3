"""Append-only in the database (DESIGN §4, §14.5): reconciliation entries, mint log claims,
deposit transitions and admin actions refuse UPDATE and DELETE by trigger, on PostgreSQL and
on SQLite, so raw SQL (a console, a script, a bad migration) cannot rewrite history either.
The models' own guards (core.models.AppendOnlyModel) only stop the ORM's instance API.

Also the CHECK that a mint log claim names a deposit or an entry (DESIGN §4): a table
constraint on PostgreSQL; SQLite cannot add a constraint to an existing table, so there a
BEFORE INSERT trigger refuses the same rows.

PostgreSQL's TRUNCATE (the test suite's flush) fires no row trigger; nothing in the code
updates or deletes these rows (supersession of a claim is a new row). Migrations that backfill
these tables must run before this one. On SQLite, a later migration that rebuilds one of these
tables (most ALTERs do) drops its triggers with the old table: re-create them there
(tests/reconciliation/test_append_only.py migrates a fresh SQLite file and proves they hold).
"""

from django.db import migrations

TABLES = (
    "reconciliation_reconciliationentry",
    "minting_mintlogclaim",
    "deposits_deposittransition",
    "core_adminaction",
)
CLAIM_CHECK = "mint_log_claim_names_deposit_or_entry"


def _sentence(table: str, verb: str) -> str:
    return f"{table} is append-only: rows are never {verb}."


def _postgresql(apply: bool) -> list[str]:
    if not apply:
        statements = [f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};" for t in TABLES]
        statements.append(
            f"ALTER TABLE minting_mintlogclaim DROP CONSTRAINT IF EXISTS {CLAIM_CHECK};"
        )
        statements.append("DROP FUNCTION IF EXISTS append_only_refuse();")
        return statements
    statements = [
        """
        CREATE OR REPLACE FUNCTION append_only_refuse() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- P0001 (an InternalError), never an integrity class: code that catches a
            -- duplicate must not mistake a refused rewrite for one
            RAISE EXCEPTION '% is append-only: % refused.', TG_TABLE_NAME, TG_OP;
        END;
        $$;
        """
    ]
    for table in TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION append_only_refuse();"
        )
    statements.append(
        f"ALTER TABLE minting_mintlogclaim ADD CONSTRAINT {CLAIM_CHECK} "
        "CHECK (deposit_id IS NOT NULL OR reconciliation_entry_id IS NOT NULL);"
    )
    return statements


def _sqlite(apply: bool) -> list[str]:
    if not apply:
        statements = []
        for table in TABLES:
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_update;")
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_delete;")
        statements.append(f"DROP TRIGGER IF EXISTS {CLAIM_CHECK};")
        return statements
    statements = []
    for table in TABLES:
        for verb, word in (("UPDATE", "updated"), ("DELETE", "deleted")):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} "
                f"BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{_sentence(table, word)}'); END;"
            )
    statements.append(
        f"CREATE TRIGGER IF NOT EXISTS {CLAIM_CHECK} BEFORE INSERT ON minting_mintlogclaim "
        "WHEN NEW.deposit_id IS NULL AND NEW.reconciliation_entry_id IS NULL "
        "BEGIN SELECT RAISE(ABORT, 'A mint log claim must name a deposit or an entry.'); END;"
    )
    return statements


def _run(apply: bool):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            statements = _postgresql(apply)
        elif vendor == "sqlite":
            statements = _sqlite(apply)
        else:  # the project runs on these two only (DESIGN §11)
            raise RuntimeError(f"No append-only triggers written for {vendor}.")
        for statement in statements:
            # no parameters: the PostgreSQL function's format string holds '%'
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0001_chain_index_and_entries"),
        ("minting", "0008_verbose_names"),
        ("deposits", "0005_role_permissions"),
        ("core", "0005_bank_admin_role_permissions"),
    ]

    operations = [migrations.RunPython(_run(True), _run(False))]
