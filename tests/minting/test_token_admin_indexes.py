"""The token-administration redrive (``token_admin_redrive``, beat every minute) and the token
pages read the audit log through its indexes, never by reading the whole log: on a seeded
``core_adminaction`` (100,000 unrelated rows, 1,500 finished token actions with their
execution rows, ANALYZEd), PostgreSQL's plan for every one of their AdminAction queries uses
``admin_action_action_at`` or ``admin_action_queued_action`` and no sequential scan of the
table. The planner is left to itself (no ``enable_seqscan = off``): the statistics decide."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import AdminAction
from minting.services import token_admin
from minting.services.token_admin import (
    TOKEN_ACTIONS,
    token_admin_actions_recent,
    token_admin_executions,
    token_admin_redrive,
)
from tests.factories import super_admin

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db

HOLDER = "0x" + "ab" * 20
OTHER_ROWS = 100_000
FINISHED = 1_500


@pytest.fixture
def audit_log(settings):
    """A long audit log: unrelated actions of every outcome (including ``mint.retry``
    ``queued``), finished token actions (decision, signed, sent, done), then ANALYZE."""
    settings.OPERATOR_PRIVATE_KEY = ""  # an unfinished action is refused without the chain
    actor = super_admin()
    columns = "id, actor_id, action, target_type, target_id, params, outcome, reason, at"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO core_adminaction ({columns})
            SELECT gen_random_uuid(), %s,
                   (ARRAY['deposit.approve', 'mint.retry', 'kyc.approve', 'safe.batch_file'])
                       [1 + i %% 4],
                   'deposit', i::text, jsonb_build_object('n', i),
                   (ARRAY['done', 'queued', 'refused', 'minted'])[1 + i %% 4], '',
                   now() - make_interval(secs => i)
            FROM generate_series(1, %s) AS i
            """,
            [actor.pk, OTHER_ROWS],
        )
        cursor.execute(
            f"""
            WITH decision AS (
                INSERT INTO core_adminaction ({columns})
                SELECT gen_random_uuid(), %s, 'token.freeze', 'address', %s,
                       jsonb_build_object('operation', 'freeze'), 'queued', '',
                       now() - make_interval(mins => 10 * i)
                FROM generate_series(1, %s) AS i
                RETURNING id, at
            )
            INSERT INTO core_adminaction ({columns})
            SELECT gen_random_uuid(), %s, 'token.freeze', 'address', %s,
                   jsonb_build_object('queued_action', decision.id::text,
                                      'operation', 'freeze'),
                   step.outcome, '', decision.at + make_interval(secs => step.n)
            FROM decision CROSS JOIN (VALUES (1, 'signed'), (2, 'sent'), (3, 'done'))
                AS step (n, outcome)
            """,
            [actor.pk, HOLDER, FINISHED, actor.pk, HOLDER],
        )
        cursor.execute("ANALYZE core_adminaction")
    return actor


def unfinished_pause(actor, *, minutes_ago: int) -> AdminAction:
    """An operator-lane pause whose message was lost: a decision and nothing after it."""
    return AdminAction.objects.create(
        actor=actor,
        action="token.pause",
        target_type="token",
        target_id="token",
        params={"operation": "pause"},
        outcome="queued",
        at=token_admin.now() - dt.timedelta(minutes=minutes_ago),
    )


def plans_of(queries: list[dict]) -> list[tuple[str, str]]:
    """(sql, plan) of each captured read of the audit log."""
    plans = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if not sql.startswith("SELECT") or '"core_adminaction"' not in sql:
                continue
            cursor.execute("EXPLAIN " + sql)
            plans.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return plans


def assert_indexed(plans: list[tuple[str, str]]) -> None:
    """Every read of the audit log is an index read (a lookup by primary key is one too)."""
    assert plans
    for sql, plan in plans:
        assert "Seq Scan on core_adminaction" not in plan, f"{sql}\n{plan}"
        assert " on core_adminaction" in plan and "Index" in plan, f"{sql}\n{plan}"


def test_the_redrive_reads_the_audit_log_through_its_indexes(audit_log):
    decision = unfinished_pause(audit_log, minutes_ago=2)
    with CaptureQueriesContext(connection) as reads:
        counts = token_admin_redrive()
    # Behaviour kept: the one unfinished action is driven (refused: no operator key), the
    # 1,500 finished ones are left alone.
    assert counts == {"refused": 1, "stuck": 0}
    (refused,) = token_admin_executions(action_id=decision.pk)
    assert refused.outcome == "refused"
    assert AdminAction.objects.filter(action="token.freeze", outcome="refused").count() == 0

    plans = plans_of(reads.captured_queries)
    assert_indexed(plans)
    unfinished = [plan for sql, plan in plans if "NOT EXISTS" in sql or "NOT (EXISTS" in sql]
    assert unfinished and all("admin_action_action_at" in plan for plan in unfinished)
    executions = [plan for sql, plan in plans if "queued_action" in sql and "EXISTS" not in sql]
    assert executions and all("admin_action_queued_action" in plan for plan in executions)


def test_the_stuck_alert_sweep_reads_through_the_indexes_too(audit_log):
    unfinished_pause(audit_log, minutes_ago=30)  # past STUCK_AFTER: driven, then swept
    with CaptureQueriesContext(connection) as reads:
        token_admin_redrive()
    assert_indexed(plans_of(reads.captured_queries))


def test_the_token_pages_lists_read_through_the_indexes(audit_log):
    with CaptureQueriesContext(connection) as reads:
        recent = token_admin_actions_recent(limit=50)
    assert len(recent) == 50
    assert all(last is not None and last.outcome == "done" for _decision, last in recent)
    assert_indexed(plans_of(reads.captured_queries))


def test_every_token_action_named_in_the_code_is_one_of_the_token_actions():
    """``action IN TOKEN_ACTIONS`` replaced the "token." prefix: an action written or read
    anywhere under another "token.…" name would fall outside the redrive's reads."""
    named = set()
    apps = ("accounts", "backstage", "config", "core", "deposits", "minting", "reconciliation")
    for path in (path for app in apps for path in (REPO / app).rglob("*.py")):
        named |= set(re.findall(r"[\"'](token\.[a-z_]+)[\"']", path.read_text()))
    assert named, "the scan found no token action at all"
    assert named <= set(TOKEN_ACTIONS), named - set(TOKEN_ACTIONS)
    assert set(TOKEN_ACTIONS) == {f"token.{name}" for name in token_admin.OPERATIONS}
