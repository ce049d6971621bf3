# ruff: noqa: S608  (the seed's SQL is built from this file's constants; nothing from outside)
"""Backstage at a real issuer's volume (``make bench-backstage``; issue 13 point 3): not a test.

Seeds BENCH_DEPOSITS (1,000,000) deposits spread evenly over the last 365 days (about 82,000
in the last 30) on a throwaway PostgreSQL (the tests' own, tests/support/services.py), in
every status — mostly minted; thousands submitted, mint_pending, mint_processing,
mint_failed, mint_requires_safe; some held, cancelled (expired or by the customer),
rejected, refunded — with their transitions, bank and platform approvals, payment
notifications, mint transactions, mint attempts and mint log claims, a few thousand
customers with wallets, six banks and the daily issuance ledger. The rows are made by the
server itself (``INSERT … SELECT … FROM generate_series``: no row crosses the wire), then
vacuumed and analysed as autovacuum would leave them.

Then each page is fetched through the Django test client, logged in as a super admin and as
a bank admin (second factor passed): the deposit list, the list filtered by status and by
hold, a search by id, PSP reference, bank reference, transfer reference, phone, e-mail and
mint transaction hash, one deposit's page and the Backstage home. Each page is fetched
BENCH_WARMUP times first (warm caches), then BENCH_RUNS times timed; the table gives the
median and the slowest run and the queries one fetch makes. A page whose median reaches
BENCH_LIMIT_MS (500) is flagged and the benchmark exits 1.

Knobs: BENCH_DEPOSITS (1000000), BENCH_CUSTOMERS (5000), BENCH_RUNS (10), BENCH_WARMUP (2),
BENCH_LIMIT_MS (500). NTZS_TEST_DATABASE_URL (and NTZS_TEST_REDIS_URL) point it at a server
of your own instead; a database that already holds the seeded rows is reused (the seed is
skipped), so indexes can be tried without seeding again.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

N_DEPOSITS = int(os.environ.get("BENCH_DEPOSITS", "1000000"))
N_CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "5000"))
RUNS = int(os.environ.get("BENCH_RUNS", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
LIMIT_MS = float(os.environ.get("BENCH_LIMIT_MS", "500"))
DAYS = 365

CHANGELIST = "/backstage/deposits/depositrequest/"
CONTRACT = "0x" + "5a" * 20
SIGNER = "0x" + "c0" * 20
CHAIN_ID = 84532

# The tables of a million rows or more, loaded as a bulk load.
BULK_TABLES = (
    "deposits_depositrequest",
    "deposits_deposittransition",
    "deposits_depositapproval",
    "deposits_paymentnotification",
    "minting_minttransaction",
    "minting_mintattempt",
    "minting_mintlogclaim",
)

# Banks: the settlement bank takes every ZenoPay deposit; transfers are spread over the rest.
BANKS = ["CRDB (ZenoPay settlement)", "NMB", "NBC", "Exim", "Stanbic", "Azania"]
TRANSFER_BANKS = len(BANKS) - 1

# The status of deposit g (1 = newest) by a bucket r = (g * 7919) % 1000: per mille.
STATUS_BUCKETS = [
    ("minted", 870),
    ("cancelled", 60),  # half expired unpaid, half cancelled by the customer
    ("rejected", 15),
    ("refunded", 5),
    ("mint_failed", 10),
    ("submitted", 15),  # one in five of them held
    ("mint_pending", 10),
    ("mint_processing", 8),
    ("mint_requires_safe", 7),
]
assert sum(share for _status, share in STATUS_BUCKETS) == 1000

# Each status's transitions (from, to, source); offsets are seconds after creation.
PATHS = {
    "submitted": [("", "submitted", "user")],
    "cancelled": [("", "submitted", "user"), ("submitted", "cancelled", "system")],
    "rejected": [("", "submitted", "user"), ("submitted", "rejected", "admin")],
    "mint_pending": [("", "submitted", "user"), ("submitted", "mint_pending", "webhook")],
    "mint_processing": [
        ("", "submitted", "user"),
        ("submitted", "mint_pending", "webhook"),
        ("mint_pending", "mint_processing", "worker"),
    ],
    "minted": [
        ("", "submitted", "user"),
        ("submitted", "mint_pending", "webhook"),
        ("mint_pending", "mint_processing", "worker"),
        ("mint_processing", "minted", "worker"),
    ],
    "mint_failed": [
        ("", "submitted", "user"),
        ("submitted", "mint_pending", "webhook"),
        ("mint_pending", "mint_processing", "worker"),
        ("mint_processing", "mint_failed", "worker"),
    ],
    "mint_requires_safe": [
        ("", "submitted", "user"),
        ("submitted", "mint_requires_safe", "webhook"),
    ],
    "refunded": [
        ("", "submitted", "user"),
        ("submitted", "mint_pending", "webhook"),
        ("mint_pending", "mint_processing", "worker"),
        ("mint_processing", "mint_failed", "worker"),
        ("mint_failed", "refunded", "admin"),
    ],
}
PAID = (
    "minted",
    "refunded",
    "mint_failed",
    "mint_pending",
    "mint_processing",
    "mint_requires_safe",
)
MINT_STATUS = {
    "mint_pending": "pending",
    "mint_processing": "sent",
    "minted": "minted",
    "mint_failed": "failed",
    "refunded": "failed",
}
ATTEMPT_STATUS = {
    "mint_processing": "sent",
    "minted": "mined_ok",
    "mint_failed": "mined_reverted",
    "refunded": "mined_reverted",
}


# --- SQL pieces: deposit g's columns, the same wherever they are needed -------------------------


def _status_case() -> str:
    parts, upper = [], 0
    for status, share in STATUS_BUCKETS:
        upper += share
        parts.append(f"WHEN (g::bigint * 7919) % 1000 < {upper} THEN '{status}'")
    return "CASE " + " ".join(parts) + " END"


def _hex64(seed: str) -> str:
    return f"'0x' || md5({seed}) || md5({seed} || 'b')"


TX_HASH = _hex64("'tx' || g")  # deposit g's mint transaction
ATT_HASH = _hex64("'att' || g")  # a mint attempt that did not mine


def _sql_values(rows) -> str:
    def literal(value):
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        return str(value)

    return ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)


def configure() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    print(f"migrate: {time.monotonic() - started:.1f} s", flush=True)


def seeded() -> bool:
    """The database already holds this seed (NTZS_TEST_DATABASE_URL reused)."""
    from django.db import connection

    if "bench_seed" not in connection.introspection.table_names():
        return False
    with connection.cursor() as cur:
        cur.execute("SELECT deposits, customers FROM bench_seed")
        return cur.fetchone() == (N_DEPOSITS, N_CUSTOMERS)


def seed() -> dict:
    """Every row, made by the server; returns seconds per step."""
    from django.db import connection, transaction

    timings: dict[str, float] = {}
    n, customers = N_DEPOSITS, N_CUSTOMERS
    step = f"(interval '{DAYS} days' / {n})"
    status = _status_case()

    def run(name: str, sql: str) -> None:
        started = time.monotonic()
        with connection.cursor() as cur:
            cur.execute(sql)  # no parameters: "%" is SQL's modulo here
        timings[name] = time.monotonic() - started
        print(f"  {name}: {timings[name]:.1f} s", flush=True)

    with transaction.atomic():
        with connection.cursor() as cur:
            # A bulk load as pg_restore does it: foreign keys are not checked row by row (the
            # rows are made consistent above), and each big table's secondary indexes are
            # built once at the end, sorted, instead of updated at random for every row.
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                [list(BULK_TABLES)],
            )
            deferred = cur.fetchall()
            for name, _definition in deferred:
                cur.execute(f'DROP INDEX "{name}"')
        run(
            "banks",
            "INSERT INTO deposits_bank (id, name, status, is_zenopay_settlement, account_name,"
            " account_number, transfer_instructions) SELECT md5('bank' || i)::uuid, name,"
            " 'active', i = 0, 'nTZS Issuance Ltd', '01J' || lpad(i::text, 10, '0'), ''"
            f" FROM (VALUES {_sql_values(enumerate(BANKS))}) AS b(i, name)",
        )
        run(
            "customers",
            "INSERT INTO accounts_user (id, password, last_login, is_superuser, email,"
            " full_name, phone, is_staff, is_active, date_joined)"
            " SELECT md5('user' || u)::uuid, '!', NULL, false,"
            " 'customer' || u || '@bench.ntzs.test', 'Customer ' || u,"
            " '+2557' || lpad(((u::bigint * 7919) % 100000000)::text, 8, '0'), false, true,"
            f" now() - interval '{DAYS + 30} days' FROM generate_series(1, {customers}) AS u",
        )
        run(
            "wallets",
            "INSERT INTO accounts_wallet (id, user_id, chain, address, created_at, verified_at,"
            " verification_method, closed_at, closed_reason)"
            " SELECT md5('wallet' || u)::uuid, md5('user' || u)::uuid, 'base',"
            " '0x' || substr(md5('addr' || u), 1, 32) || substr(md5('addr2' || u), 1, 8),"
            f" now() - interval '{DAYS + 30} days', now() - interval '{DAYS + 30} days',"
            f" 'message_signature', NULL, '' FROM generate_series(1, {customers}) AS u",
        )
        # Deposit g (1 = newest) and the columns the other tables repeat.
        run(
            "bench_deposit (plan)",
            "CREATE TEMP TABLE bench_deposit AS SELECT g,"
            " md5('dep' || g)::uuid AS id,"
            f" 1 + (g::bigint * 31) % {customers} AS u,"
            f" now() - (g - 1) * {step} AS created_at,"
            f" {status} AS status,"
            " (g % 10 < 7) AS zenopay,"
            f" CASE WHEN g % 10 < 7 THEN 0 ELSE 1 + (g / 10) % {TRANSFER_BANKS} END AS bank,"
            " 1000 + ((g::bigint * 37) % 500) * 1000 AS amount"
            f" FROM generate_series(1, {n}) AS g",
        )
        run(
            "deposits",
            "INSERT INTO deposits_depositrequest (id, user_id, bank_id, wallet_id, chain,"
            " amount_tzs, status, status_reason, payment_provider, buyer_phone, initiation,"
            " initiation_error, transfer_reference, psp_reference, psp_channel,"
            " fiat_confirmed_at, fiat_confirmed_by_id, idempotency_key, request_fingerprint,"
            " hold_reason, hold_details, next_poll_at, last_checked_at, poll_attempts,"
            " mint_tx_hash, minted_at, cancelled_at, created_at, updated_at)"
            " SELECT id, md5('user' || u)::uuid, md5('bank' || bank)::uuid,"
            " md5('wallet' || u)::uuid, 'base', amount, status,"
            " CASE WHEN status = 'cancelled' AND g % 2 = 0"
            "   THEN 'The payment did not arrive in time; the deposit expired.'"
            "  WHEN status = 'cancelled' THEN 'Cancelled by the customer.'"
            "  WHEN status = 'rejected' THEN 'The bank did not receive the transfer.'"
            "  ELSE '' END,"
            " CASE WHEN zenopay THEN 'zenopay' ELSE 'bank_transfer' END,"
            " CASE WHEN zenopay THEN '+2557' || lpad(((u::bigint * 7919) % 100000000)::text,"
            "   8, '0') ELSE '' END,"
            " CASE WHEN zenopay THEN 'requested' END, '',"
            " CASE WHEN zenopay THEN NULL ELSE 'NTZS' || upper(lpad(to_hex(g), 8, '0')) END,"
            f" CASE WHEN status IN {PAID} AND zenopay THEN 'ZP' || (100000000 + g)"
            f"  WHEN status IN {PAID} THEN 'BR' || bank || '-' || (500000000 + g) ELSE '' END,"
            f" CASE WHEN status IN {PAID} AND zenopay"
            "   THEN (ARRAY['MPESA-TZ', 'TIGO-TZ', 'AIRTEL-TZ'])[1 + g % 3] ELSE '' END,"
            f" CASE WHEN status IN {PAID} THEN created_at + interval '2 minutes' END, NULL,"
            " NULL, md5('fp' || g),"
            " CASE WHEN status = 'submitted' AND g % 5 = 0"
            "   THEN 'The amount received differs from the amount asked.' ELSE '' END,"
            " CASE WHEN status = 'submitted' AND g % 5 = 0"
            "   THEN jsonb_build_object('amount_received_tzs', amount - 500) ELSE '{}' END,"
            " CASE WHEN status = 'submitted' AND zenopay"
            "   THEN created_at + interval '1 minute' END,"
            " CASE WHEN zenopay THEN created_at + interval '1 minute' END,"
            " CASE WHEN zenopay THEN 1 ELSE 0 END,"
            f" CASE WHEN status = 'minted' THEN {TX_HASH} ELSE '' END,"
            " CASE WHEN status = 'minted' THEN created_at + interval '3 minutes' END,"
            " CASE WHEN status = 'cancelled' THEN created_at + interval '1 hour' END,"
            " created_at, created_at + interval '3 minutes'"
            " FROM bench_deposit ORDER BY id",  # the primary key's order: appended, not scattered
        )
        paths = [
            (status, index, src, dst, source)
            for status, steps in PATHS.items()
            for index, (src, dst, source) in enumerate(steps)
        ]
        run(
            "transitions",
            "INSERT INTO deposits_deposittransition (deposit_id, from_status, to_status, source,"
            " actor_id, note, metadata, at)"
            " SELECT d.id, p.src, p.dst, p.source, NULL, '', '{}',"
            " d.created_at + p.step * interval '1 minute'"
            f" FROM bench_deposit d JOIN (VALUES {_sql_values(paths)})"
            " AS p(status, step, src, dst, source) ON p.status = d.status"
            " ORDER BY d.created_at, p.step",
        )
        run(
            "staff",
            "INSERT INTO accounts_user (id, password, is_superuser, email, full_name, phone,"
            " is_staff, is_active, date_joined) SELECT md5('staff' || i)::uuid, '!', false,"
            " 'approver' || i || '@bench.ntzs.test', 'Approver ' || i, '', true, true, now()"
            f" FROM generate_series(0, {len(BANKS)}) AS i",
        )
        run(
            "approvals",
            "INSERT INTO deposits_depositapproval (deposit_id, approver_id, type, decision,"
            " reason, bank_reference, amount_received_tzs, at)"
            " SELECT d.id, md5('staff' || CASE WHEN t.type = 'bank' THEN d.bank ELSE 0 END)::uuid,"
            " t.type, CASE WHEN d.status = 'rejected' THEN 'rejected' ELSE 'approved' END,"
            " CASE WHEN d.status = 'rejected' THEN 'Not received.' ELSE '' END,"
            " CASE WHEN t.type = 'bank' AND d.status <> 'rejected'"
            "   THEN 'BR' || d.bank || '-' || (500000000 + d.g) ELSE '' END,"
            " CASE WHEN t.type = 'bank' AND d.status <> 'rejected' THEN d.amount END,"
            " d.created_at + interval '1 minute'"
            " FROM bench_deposit d CROSS JOIN (VALUES ('bank'), ('platform')) AS t(type)"
            f" WHERE NOT d.zenopay AND (d.status IN {PAID} OR"
            "  (d.status = 'rejected' AND t.type = 'bank'))",
        )
        run(
            "notifications",
            "INSERT INTO deposits_paymentnotification (id, provider, kind, order_id, deposit_id,"
            " payment_status, body, headers, remote_ip, key_status, authenticated, http_status,"
            " outcome, outcome_note, received_at, decided_at)"
            " SELECT md5('pn' || g)::uuid, 'zenopay', 'webhook', id::text, id, 'COMPLETED',"
            ' \'{"order_id": "\' || id || \'", "payment_status": "COMPLETED",'
            " \"reference\": \"ZP' || (100000000 + g) || '\"}', '{}', '127.0.0.1', 'valid', true,"
            " 200, 'applied', '', created_at + interval '2 minutes',"
            " created_at + interval '2 minutes'"
            f" FROM bench_deposit WHERE zenopay AND status IN {PAID} ORDER BY 1",
        )
        run(
            "signer",
            "INSERT INTO minting_signeraccount (address, chain_id, next_nonce, last_mined_nonce,"
            " sending_enabled, disabled_reason, preflight_ok, preflight_reason, preflight_at,"
            f" updated_at) VALUES ('{SIGNER}', {CHAIN_ID}, {n + 1}, {n}, true, '', true, '',"
            " now(), now())",
        )
        mint_case = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in MINT_STATUS.items())
        run(
            "mint transactions",
            "INSERT INTO minting_minttransaction (id, deposit_id, chain_id, contract_address,"
            " to_address, amount_units, source, status, reserved_day, reserved_tzs,"
            " cap_deferred_on, uses_deposit_ref, tx_hash, log_index, logs_from_block,"
            " finality_checked_at, error, attempt_count, created_at, updated_at)"
            f" SELECT md5('mt' || g)::uuid, id, {CHAIN_ID}, '{CONTRACT}',"
            " '0x' || substr(md5('addr' || u), 1, 32) || substr(md5('addr2' || u), 1, 8),"
            " amount * 1000000000000000000::numeric, 'worker',"
            f" CASE status {mint_case} END, NULL, 0, NULL, true,"
            f" CASE WHEN status = 'minted' THEN {TX_HASH} ELSE '' END,"
            " CASE WHEN status = 'minted' THEN 0 END, 1000000 + g / 2,"
            " CASE WHEN status = 'minted' THEN created_at + interval '10 minutes' END,"
            " CASE WHEN status IN ('mint_failed', 'refunded')"
            "   THEN 'execution reverted: EnforcedPause()' ELSE '' END,"
            " CASE WHEN status = 'mint_pending' THEN 0 ELSE 1 END,"
            " created_at + interval '2 minutes', created_at + interval '3 minutes'"
            f" FROM bench_deposit WHERE status IN {tuple(MINT_STATUS)} ORDER BY 1",
        )
        attempt_case = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in ATTEMPT_STATUS.items())
        run(
            "mint attempts",
            "INSERT INTO minting_mintattempt (id, mint_transaction_id, signer_id, nonce, tx_hash,"
            " raw_tx, max_fee_per_gas, max_priority_fee_per_gas, gas_limit, kind, status, error,"
            " created_at, sent_at, gas_used, effective_gas_price, l1_fee, mined_on)"
            " SELECT md5('att' || g)::uuid, md5('mt' || g)::uuid,"
            " (SELECT id FROM minting_signeraccount LIMIT 1), g,"
            f" CASE WHEN status = 'minted' THEN {TX_HASH}"
            f"  ELSE {ATT_HASH} END,"
            " '0x02f8', 2000000, 1000000, 120000, 'mint', CASE status " + attempt_case + " END,"
            " '', created_at + interval '2 minutes', created_at + interval '2 minutes',"
            " CASE WHEN status <> 'mint_processing' THEN 61234 END,"
            " CASE WHEN status <> 'mint_processing' THEN 1500000 END,"
            " CASE WHEN status <> 'mint_processing' THEN 20000 END,"
            " CASE WHEN status <> 'mint_processing' THEN (created_at + interval '3 minutes')::date"
            " END"
            f" FROM bench_deposit WHERE status IN {tuple(ATTEMPT_STATUS)} ORDER BY 1",
        )
        run(
            "mint log claims",
            "INSERT INTO minting_mintlogclaim (chain_id, tx_hash, log_index, deposit_id,"
            " supersedes_id, reconciliation_entry_id, claimed_at)"
            f" SELECT {CHAIN_ID}, {TX_HASH}, 0, id, NULL, NULL,"
            " created_at + interval '3 minutes' FROM bench_deposit WHERE status = 'minted'"
            " ORDER BY 2",
        )
        run(
            "daily issuance",
            "INSERT INTO minting_dailyissuance (day, cap_override_tzs, cap_override_reason,"
            " reserved_tzs, issued_tzs, safe_issued_tzs)"
            " SELECT (created_at + interval '3 minutes')::date, NULL, '', 0, sum(amount), 0"
            " FROM bench_deposit WHERE status = 'minted' GROUP BY 1",
        )
        started = time.monotonic()
        with connection.cursor() as cur:
            for _name, definition in deferred:
                cur.execute(definition)
        timings["indexes"] = time.monotonic() - started
        print(f"  indexes ({len(deferred)}): {timings['indexes']:.1f} s", flush=True)
        with connection.cursor() as cur:
            cur.execute("CREATE TABLE bench_seed (deposits integer, customers integer)")
            cur.execute("INSERT INTO bench_seed VALUES (%s, %s)", [n, customers])
            cur.execute("DROP TABLE bench_deposit")
    started = time.monotonic()
    with connection.cursor() as cur:
        # What autovacuum leaves behind on a live system: statistics and the visibility map.
        cur.execute("VACUUM ANALYZE")
    timings["vacuum analyze"] = time.monotonic() - started
    print(f"  vacuum analyze: {timings['vacuum analyze']:.1f} s", flush=True)
    return timings


# --- The pages ---------------------------------------------------------------------------------


def _md5_uuid(text: str) -> str:
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(text.encode()).hexdigest()))  # noqa: S324  (= SQL md5)


def _status_of(g: int) -> str:
    bucket, upper = (g * 7919) % 1000, 0
    for status, share in STATUS_BUCKETS:
        upper += share
        if bucket < upper:
            return status
    raise AssertionError(g)


def _deposit_g(*, status: str, bank: int, start: int) -> int:
    """The newest deposit at or after ``start`` of this status and bank (0: ZenoPay)."""
    g = start
    while True:
        zenopay = g % 10 < 7
        g_bank = 0 if zenopay else 1 + (g // 10) % TRANSFER_BANKS
        if g_bank == bank and _status_of(g) == status:
            return g
        g += 1


def _customer_of(g: int) -> tuple[str, str]:
    u = 1 + (g * 31) % N_CUSTOMERS
    phone = "+2557" + str((u * 7919) % 100_000_000).zfill(8)
    return f"customer{u}@bench.ntzs.test", phone


def _tx_hash(g: int) -> str:
    import hashlib

    seed = f"tx{g}"
    first = hashlib.md5(seed.encode()).hexdigest()  # noqa: S324  (= the seed's SQL md5)
    return "0x" + first + hashlib.md5((seed + "b").encode()).hexdigest()  # noqa: S324


def pages() -> list[tuple[str, str, dict]]:
    """(label, path, query) of each page timed; the deposits searched for belong to NMB (a
    bank transfer, so the bank admin finds it too) except the ZenoPay ones."""
    nmb = 1
    # About ten days old: deep enough that no index on recent rows alone finds it.
    transfer_g = _deposit_g(status="minted", bank=nmb, start=N_DEPOSITS * 10 // DAYS)
    zenopay_g = _deposit_g(status="minted", bank=0, start=N_DEPOSITS * 10 // DAYS)
    email, _phone = _customer_of(transfer_g)
    _email, phone = _customer_of(zenopay_g)
    return [
        ("deposit list", CHANGELIST, {}),
        ("list: status minted", CHANGELIST, {"status__exact": "minted"}),
        ("list: status submitted", CHANGELIST, {"status__exact": "submitted"}),
        ("list: status mint_failed", CHANGELIST, {"status__exact": "mint_failed"}),
        ("list: held", CHANGELIST, {"held": "yes"}),
        ("search: deposit id", CHANGELIST, {"q": _md5_uuid(f"dep{transfer_g}")}),
        ("search: PSP reference", CHANGELIST, {"q": f"ZP{100_000_000 + zenopay_g}"}),
        ("search: bank reference", CHANGELIST, {"q": f"BR{nmb}-{500_000_000 + transfer_g}"}),
        ("search: transfer ref", CHANGELIST, {"q": f"NTZS{transfer_g:08X}"}),
        ("search: phone", CHANGELIST, {"q": "0" + phone.removeprefix("+255")}),
        ("search: e-mail", CHANGELIST, {"q": email}),
        ("search: tx hash", CHANGELIST, {"q": _tx_hash(transfer_g)}),
        (
            "deposit detail",
            f"/backstage/deposits/depositrequest/{_md5_uuid(f'dep{transfer_g}')}/change/",
            {},
        ),
        ("dashboard", "/backstage/", {}),
    ]


def personas():
    """A super admin and NMB's bank admin, each with a client past the second factor."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User
    from deposits.models import BankStaff
    from tests.factories import bank_admin, super_admin

    salim = User.objects.filter(email="salim@bench.ntzs.test").first() or super_admin(
        email="salim@bench.ntzs.test", is_superuser=True
    )
    baraka = User.objects.filter(email="baraka@nmb.bench.ntzs.test").first()
    if baraka is None:
        baraka = bank_admin(email="baraka@nmb.bench.ntzs.test")
        BankStaff.objects.create(user=baraka, bank_id=_md5_uuid("bank1"))
    result = []
    for label, user in (("super admin", salim), ("bank admin", baraka)):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
        client = Client()
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        result.append((label, client))
    return result


class QueryLog:
    """Every query one fetch makes, with its time (a database execute wrapper: it sees what
    the page runs whatever the logging settings)."""

    def __init__(self):
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(((time.perf_counter() - started) * 1000, sql))


def time_page(client, path: str, query: dict) -> dict:
    from django.db import connection

    for _ in range(WARMUP):
        client.get(path, query)
    log = QueryLog()
    with connection.execute_wrapper(log):
        response = client.get(path, query)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        client.get(path, query)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "status": response.status_code,
        "median": statistics.median(times),
        "max": max(times),
        "queries": len(log.queries),
        "slowest_query": max(log.queries, default=None),
        "sql_ms": sum(ms for ms, _sql in log.queries),
    }


HEADER = (
    f"{'persona':<12} {'page':<26} {'HTTP':>4} {'median':>8} {'max':>8} {'queries':>7}"
    f" {'SQL ms':>7}"
)


def _row(persona: str, label: str, result: dict, flagged: bool) -> str:
    return (
        f"{persona:<12} {label:<26} {result['status']:>4} {result['median']:>8.1f}"
        f" {result['max']:>8.1f} {result['queries']:>7} {result['sql_ms']:>7.1f}"
        + ("  <-- SLOW" if flagged else "")
    )


def main() -> int:
    started = time.monotonic()
    configure()
    if seeded():
        print(f"seed: reusing the {N_DEPOSITS:,} deposits already in the database", flush=True)
        seed_seconds = None
    else:
        print(f"seed: {N_DEPOSITS:,} deposits, {N_CUSTOMERS:,} customers", flush=True)
        seed_started = time.monotonic()
        seed()
        seed_seconds = time.monotonic() - seed_started
        print(f"seed: {seed_seconds:.0f} s in all", flush=True)

    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM deposits_depositrequest")
        total = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM deposits_depositrequest"
            " WHERE created_at > now() - interval '30 days'"
        )
        recent = cur.fetchone()[0]
    print(f"{total:,} deposits, {recent:,} in the last 30 days", flush=True)

    rows, slow = [], []
    print(HEADER)
    for persona, client in personas():
        for label, path, query in pages():
            result = time_page(client, path, query)
            flagged = result["median"] >= LIMIT_MS or result["status"] != 200
            rows.append((persona, label, result, flagged))
            if flagged:
                slow.append((persona, label, result))
            print(_row(persona, label, result, flagged), flush=True)

    print()
    print(f"Backstage with {total:,} deposits: {RUNS} warm runs per page (ms)")
    print(HEADER)
    for persona, label, result, flagged in rows:
        print(_row(persona, label, result, flagged))
    if seed_seconds is not None:
        print(f"seed: {seed_seconds:.0f} s; whole run: {time.monotonic() - started:.0f} s")
    verbose = os.environ.get("BENCH_VERBOSE") == "1"
    for persona, label, result in slow if not verbose else [r[:3] for r in rows]:
        if result["slowest_query"]:
            ms, sql = result["slowest_query"]
            print(f"\n{persona} / {label}: slowest query {ms:.1f} ms:\n{sql[:800]}")
    if slow:
        print(f"\n{len(slow)} page(s) at or over {LIMIT_MS:.0f} ms (median) or not HTTP 200.")
        return 1
    print(f"\nEvery page under {LIMIT_MS:.0f} ms (median).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
