"""Nothing but the Celery message must decide whether a token action finishes (issue 15
point 1, review): the beat task ``minting.tasks.token_admin_redrive`` finishes an action whose
message was lost, one whose retries ran out during an RPC outage, and a signed transaction
whose bytes never reached the node (every later action waits behind its nonce); an action
without an outcome after ten minutes opens ``token action stuck``, resolved when it finishes.
``token_admin_execute`` runs on the default queue. Real NTZS on anvil, a real TCP proxy for
the outage, real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlparse

import pytest
import time_machine
from django.conf import settings as django_settings

from config.celery_app import app
from core.alerts import ALERT_KINDS, TOKEN_ACTION_STUCK
from core.crashpoints import SimulatedCrash
from core.models import AdminAction, Alert
from minting import tasks
from minting.breaker import rpc_breaker
from minting.chain import ChainUnavailable, role_id
from minting.services import token_admin
from minting.services.token_admin import (
    token_admin_execute,
    token_admin_outcome,
    token_blacklist,
    token_freeze,
    token_pause,
)
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS
from tests.support.broker import broker  # noqa: F401 - the fixture
from tests.support.tcp_proxy import TcpProxy

OPERATOR_KEY, OPERATOR = DEV_PRIVATE_KEYS[7], DEV_ADDRESSES[7]
HOLDER = DEV_ADDRESSES[8]
LATER = dt.timedelta(minutes=2)  # past REDRIVE_AFTER, before STUCK_AFTER
MUCH_LATER = dt.timedelta(minutes=11)  # past STUCK_AFTER


@pytest.fixture
def operator(chain_settings, settings):
    for role in ("PAUSER_ROLE", "FREEZER_ROLE", "BLACKLISTER_ROLE"):
        chain_settings.transact(
            chain_settings.admin_key,
            chain_settings.contract.functions.grantRole(role_id(role), OPERATOR),
        )
    settings.OPERATOR_PRIVATE_KEY = OPERATOR_KEY
    settings.CRASH_POINTS = set()
    return chain_settings


@pytest.fixture
def proxy(operator, settings):
    """The node behind a TCP proxy that can be stopped (an RPC outage), no backup."""
    proxy = TcpProxy(urlparse(operator.url).port)
    settings.BASE_SEPOLIA_RPC_URL = proxy.url
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    settings.CIRCUIT_OPEN_S = 0
    rpc_breaker().reset()
    yield proxy
    proxy.stop()
    rpc_breaker().reset()


def queued_only(service, capture, **kwargs):
    """The decision is written and its message handed to the broker on commit; the message
    is then lost (the worker never runs it)."""
    with capture() as callbacks:
        result = service(**kwargs)
    assert result.lane == "operator" and len(callbacks) == 1
    return result.action_id


def outcomes(action_id) -> list[str]:
    rows = AdminAction.objects.filter(params__queued_action=str(action_id)).order_by("at", "pk")
    return [row.outcome for row in rows]


def later(delta: dt.timedelta):
    return time_machine.travel(dt.datetime.now(dt.UTC) + delta)


def stuck_alert(action_id) -> Alert | None:
    return Alert.objects.filter(kind=TOKEN_ACTION_STUCK, key=str(action_id)).first()


@pytest.mark.django_db
def test_the_redrive_finishes_an_action_whose_message_was_lost(
    operator, superadmin, django_capture_on_commit_callbacks
):
    action_id = queued_only(
        token_pause, django_capture_on_commit_callbacks, actor=superadmin, reason="incident"
    )
    nonce = operator.w3.eth.get_transaction_count(OPERATOR)
    # A fresh action is its own message's business: the redrive leaves it for a minute.
    assert tasks.token_admin_redrive() == {"stuck": 0}
    assert outcomes(action_id) == [] and operator.contract.functions.paused().call() is False

    with later(LATER):
        counts = tasks.token_admin_redrive()  # what beat runs every minute
    assert counts == {"done": 1, "stuck": 0}
    assert outcomes(action_id) == ["signed", "sent", "done"]
    assert operator.contract.functions.paused().call() is True
    assert token_admin_outcome(action_id=action_id).params["state"]["paused"] is True
    assert operator.w3.eth.get_transaction_count(OPERATOR) == nonce + 1
    # Finished: the next runs leave it alone, nothing is sent twice.
    with later(LATER):
        assert tasks.token_admin_redrive() == {"stuck": 0}
    assert operator.w3.eth.get_transaction_count(OPERATOR) == nonce + 1


@pytest.mark.django_db(transaction=True)  # the worker's own transactions, as in production
def test_an_rpc_outage_past_the_tasks_retries_is_finished_by_the_redrive_and_alerted_meanwhile(
    operator,
    proxy,
    superadmin,
    broker,  # noqa: F811 - the imported fixture
    caplog,
):
    action_id = token_freeze(address=HOLDER, actor=superadmin, reason="court order").action_id
    # The message really went to the broker, on the default queue (not a mint worker's).
    assert broker("default") == [("minting.tasks.token_admin_execute", [str(action_id)])]
    assert broker("mint") == []
    proxy.stop()
    # A worker runs it: every one of its 20 retries meets the outage, then it gives up.
    with caplog.at_level(logging.INFO, logger="celery.app.trace"):
        result = tasks.token_admin_execute.apply(args=[str(action_id)])
    assert result.state == "FAILURE" and isinstance(result.result, ChainUnavailable)
    assert caplog.text.count("token_admin_execute") and caplog.text.count("retry:") == 20
    assert outcomes(action_id) == []  # nothing signed, nothing sent

    with later(MUCH_LATER):
        assert tasks.token_admin_redrive() == {"chain_unavailable": 1, "stuck": 1}
        alert = stuck_alert(action_id)
        assert alert is not None and alert.resolved_at is None
        assert f"token.freeze {HOLDER}" in alert.detail and "nothing signed" in alert.detail
        assert ALERT_KINDS[TOKEN_ACTION_STUCK].action

        proxy.start()
        assert tasks.token_admin_redrive() == {"done": 1, "stuck": 0}
    assert outcomes(action_id) == ["signed", "sent", "done"]
    assert operator.contract.functions.isFrozen(HOLDER).call() is True
    assert token_admin_outcome(action_id=action_id).params["state"]["frozen"] is True
    assert stuck_alert(action_id).resolved_at is not None
    assert not Alert.objects.filter(kind=TOKEN_ACTION_STUCK, resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_an_alert_opened_for_a_slow_action_resolves_when_its_own_task_finishes_it(
    operator, proxy, superadmin, django_capture_on_commit_callbacks
):
    action_id = queued_only(
        token_pause, django_capture_on_commit_callbacks, actor=superadmin, reason="incident"
    )
    proxy.stop()
    with later(MUCH_LATER):
        tasks.token_admin_redrive()
    assert stuck_alert(action_id).resolved_at is None
    proxy.start()
    assert token_admin_execute(action_id=action_id) == "done"  # the task's redelivery
    assert stuck_alert(action_id).resolved_at is not None


@pytest.mark.django_db
def test_a_signed_transaction_that_never_reached_the_node_is_rebroadcast_and_unblocks_the_next(
    operator, settings, superadmin, django_capture_on_commit_callbacks, monkeypatch
):
    capture = django_capture_on_commit_callbacks
    first = queued_only(token_freeze, capture, actor=superadmin, reason="court", address=HOLDER)
    second = queued_only(token_blacklist, capture, actor=superadmin, reason="fraud", address=HOLDER)
    nonce = operator.w3.eth.get_transaction_count(OPERATOR)
    # The first message's worker dies after signing: its nonce is recorded, its bytes unsent.
    settings.CRASH_POINTS = {"token_admin_signed_before_send"}
    with pytest.raises(SimulatedCrash):
        token_admin_execute(action_id=first)
    settings.CRASH_POINTS = set()
    # The second one's task signs the next nonce and waits behind the gap until it gives up.
    monkeypatch.setattr(token_admin, "RECEIPT_TIMEOUT_S", 1)
    assert token_admin_execute(action_id=second) == "sent"
    assert operator.w3.eth.get_transaction_count(OPERATOR, "latest") == nonce

    with later(LATER):
        assert tasks.token_admin_redrive() == {"done": 2, "stuck": 0}
    assert outcomes(first) == ["signed", "sent", "done"]
    assert outcomes(second) == ["signed", "sent", "done"]
    assert operator.w3.eth.get_transaction_count(OPERATOR, "latest") == nonce + 2
    holder = operator.contract.functions
    assert holder.isFrozen(HOLDER).call() and holder.isBlacklisted(HOLDER).call()


@pytest.mark.django_db
def test_a_stranded_nonce_taken_by_another_transaction_ends_refused_through_the_redrive(
    operator, settings, superadmin, django_capture_on_commit_callbacks
):
    action_id = queued_only(
        token_pause, django_capture_on_commit_callbacks, actor=superadmin, reason="incident"
    )
    settings.CRASH_POINTS = {"token_admin_signed_before_send"}
    with pytest.raises(SimulatedCrash):
        token_admin_execute(action_id=action_id)
    settings.CRASH_POINTS = set()
    operator.transact(OPERATOR_KEY, operator.contract.functions.freeze(HOLDER))  # by hand
    with later(LATER):
        assert tasks.token_admin_redrive() == {"refused": 1, "stuck": 0}
    assert outcomes(action_id) == ["signed", "refused"]
    assert operator.contract.functions.paused().call() is False
    # Refused is final: a later action takes a fresh nonce and is not held behind it.
    with django_capture_on_commit_callbacks():
        pause = token_pause(actor=superadmin, reason="incident, again")
    assert token_admin_execute(action_id=pause.action_id) == "done"
    assert operator.contract.functions.paused().call() is True


def test_the_token_admin_tasks_run_on_the_default_queue_and_the_redrive_is_scheduled():
    for name in ("minting.tasks.token_admin_execute", "minting.tasks.token_admin_redrive"):
        assert app.amqp.router.route({}, name)["queue"].name == "default"
    assert app.amqp.router.route({}, "minting.tasks.process_mint_jobs")["queue"].name == "mint"
    entry = django_settings.CELERY_BEAT_SCHEDULE["minting.tasks.token_admin_redrive"]
    assert entry["schedule"] == 60.0 and entry["options"]["expires"] == 60
    # Listed among the beat intervals, so a silent redrive opens "task silent".
    assert django_settings.BEAT_INTERVALS_S["minting.tasks.token_admin_redrive"] == 60
