"""The mint pipeline under Base's limits, through the Base-like proxy (issue 10 items 2, 3):
batches split to fit, refusals classified and counted by the breaker (never a crash), and
backpressure from the sequencer's pool that burns no nonce."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest
import time_machine

from deposits.models import DepositRequest
from minting.breaker import rpc_breaker
from minting.models import MintAttempt, MintLogClaim
from minting.rpc import ChainBackOff, RpcErrorKind, rpc_connect, rpc_error_kind
from minting.services.runner import confirm_run, mint_jobs_run
from minting.services.sending import Sent
from tests.minting.conftest import assert_status_table

AS = MintAttempt.Status


@pytest.fixture
def limited(base_proxy, minting, settings):
    """The pipeline through the proxy, the breaker reset before and after."""
    settings.CIRCUIT_OPEN_S = 0
    rpc_breaker().reset()
    yield base_proxy
    rpc_breaker().reset()


@pytest.fixture
def two_second_blocks(anvil_node, chain):
    """Base's block time: transactions wait in the pool up to 2 s (restored after)."""
    anvil_node.rpc("evm_setAutomine", False)
    anvil_node.rpc("evm_setIntervalMining", 2)
    yield
    anvil_node.rpc("evm_setIntervalMining", 0)
    anvil_node.rpc("evm_setAutomine", True)


def _minted() -> int:
    return DepositRequest.objects.filter(status="minted").count()


def _assert_minted_once(chain, deposits) -> None:
    assert _minted() == len(deposits)
    assert MintLogClaim.objects.values("deposit").distinct().count() == len(deposits)
    total_units = sum(d.amount_tzs for d in deposits) * 10**18
    assert chain.contract.functions.totalSupply().call() == total_units
    assert not MintAttempt.objects.filter(kind=MintAttempt.Kind.NONCE_FILL).exists()
    assert_status_table()


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"code": -32016, "message": "over rate limit"}, RpcErrorKind.BACK_OFF),
        ({"code": -32017, "message": "sender is over rate limit"}, RpcErrorKind.BACK_OFF),
        ({"code": 429, "message": "Too Many Requests"}, RpcErrorKind.BACK_OFF),
        ({"code": -32000, "message": "txpool is full"}, RpcErrorKind.BACK_OFF),
        ({"code": -32014, "message": "batch too large"}, RpcErrorKind.UNAVAILABLE),
        ({"code": -32005, "message": "limit exceeded"}, RpcErrorKind.UNAVAILABLE),
        ({"code": 3, "message": "execution reverted"}, RpcErrorKind.ANSWER),
    ],
)
def test_a_node_refusal_is_classified_as_back_off_unavailable_or_an_answer(error, kind):
    assert rpc_error_kind(error) is kind


@pytest.mark.django_db
def test_every_batch_is_split_to_fit_the_rpc_batch_max(paid_deposit, limited, settings):
    settings.RPC_BATCH_MAX = 5
    limited.batch_limit = 5
    for i in range(12):
        paid_deposit(1_000 + i)
    result = mint_jobs_run()
    confirm_run()
    assert result["signed"] == 12 and result["sent"] == {"sent": 12}
    assert _minted() == 12
    assert max(limited.batch_sizes) <= 5
    assert limited.refusals["batch_too_large"] == 0


@pytest.mark.django_db
def test_the_batch_is_clamped_to_the_in_flight_room_before_screening(
    paid_deposit, limited, settings
):
    settings.MINT_MAX_IN_FLIGHT = 3
    settings.MINT_BATCH_SIZE = 50
    for i in range(10):
        paid_deposit(1_000 + i)
    result = mint_jobs_run()
    assert result["signed"] == 3
    assert max(limited.batch_sizes) <= 3 * 3  # three reads a candidate, three candidates
    # No room until the confirm run sees them mined: the run asks the chain nothing.
    assert mint_jobs_run() == {"idle": 1}
    confirm_run()
    assert mint_jobs_run()["signed"] == 3


@pytest.mark.django_db
def test_a_batch_refused_whole_delays_the_run_and_reaches_the_breaker(
    paid_deposit, limited, settings, caplog
):
    settings.RPC_BATCH_MAX = 50
    limited.batch_limit = 2  # below ours: the node refuses the screening batch as a whole
    for i in range(3):
        paid_deposit(1_000 + i)
    settings.CIRCUIT_OPEN_S = 30
    with caplog.at_level(logging.WARNING):
        results = [mint_jobs_run() for _ in range(6)]
    assert all(result.get("delayed") == 1 for result in results)
    assert rpc_breaker().state() == "open"
    assert "Circuit breaker OPEN" in caplog.text
    assert MintAttempt.objects.count() == 0
    assert set(DepositRequest.objects.values_list("status", flat=True)) == {"mint_pending"}


@pytest.mark.django_db
def test_rate_limited_sends_stay_signed_and_later_runs_send_them(
    paid_deposit, limited, settings, chain
):
    settings.RPC_BATCH_MAX = 4
    deposits = [paid_deposit(1_000 + i) for i in range(10)]
    limited.rate_limit(per_s=0.001, burst=2, methods=frozenset({"eth_sendRawTransaction"}))
    result = mint_jobs_run()
    # The first chunk of 4: 2 accepted, 2 refused (-32016); the other chunks are held back.
    assert result["signed"] == 10 and result["sent"] == {"sent": 2, "back_off": 8}
    assert limited.refusals["item_rate_limited"] == 2
    assert MintAttempt.objects.filter(status=AS.SIGNED).count() == 8
    counts = confirm_run()  # a single send answered 429: no higher nonce tried after it
    assert counts.get(Sent.BACK_OFF.value) == 1
    assert limited.refusals["http_429"] == 1
    limited.rate_limit(per_s=None)
    for _ in range(3):
        confirm_run()
    _assert_minted_once(chain, deposits)


@pytest.mark.django_db
def test_a_single_call_answered_429_delays_the_run_and_never_crashes_a_task(paid_deposit, limited):
    paid_deposit(1_000)
    limited.rate_limit(per_s=0.001, burst=1)
    assert mint_jobs_run().get("delayed") == 1
    assert confirm_run().get("delayed") == 1
    assert limited.refusals["http_429"] >= 2
    assert MintAttempt.objects.count() == 0


def test_the_provider_turns_a_rate_limit_answer_into_chain_back_off(base_proxy):
    w3 = rpc_connect()
    base_proxy.rate_limit(per_s=0.001, burst=1)
    assert w3.eth.block_number >= 0
    with pytest.raises(ChainBackOff, match="429"):
        w3.eth.get_block("latest")


@pytest.mark.django_db
def test_a_full_sender_pool_holds_higher_nonces_signed_and_burns_none(
    paid_deposit, limited, settings, two_second_blocks, chain
):
    settings.MINT_MAX_IN_FLIGHT = 64  # above the pool's 4: the node refuses, we back off
    limited.sender_cap = 4
    deposits = [paid_deposit(1_000 + i) for i in range(10)]
    result = mint_jobs_run()
    assert result["signed"] == 10
    assert result["sent"] == {"sent": 4, "back_off": 6}
    assert MintAttempt.objects.filter(status=AS.SIGNED).count() == 6
    deadline = time.monotonic() + 60
    while _minted() < len(deposits) and time.monotonic() < deadline:
        before = limited.refusals["txpool_full"]
        confirm_run()
        assert limited.refusals["txpool_full"] - before <= 1
        time.sleep(0.5)
    _assert_minted_once(chain, deposits)


@pytest.mark.django_db
def test_a_sent_attempt_the_node_does_not_know_is_rebroadcast_only_after_30_s(
    paid_deposit, limited, chain
):
    deposit = paid_deposit(1_000)
    limited.drop(nonce=chain.w3.eth.get_transaction_count(chain.minter_address), times=1)
    mint_jobs_run()
    attempt = MintAttempt.objects.get()
    assert (
        attempt.status == AS.SENT
        and chain.w3.eth.get_transaction_count(chain.minter_address) == attempt.nonce
    )
    start = dt.datetime.now(dt.UTC)
    with time_machine.travel(start + dt.timedelta(seconds=20), tick=False):
        confirm_run()
    assert limited.requests_seen["eth_sendRawTransaction"] == 1
    with time_machine.travel(start + dt.timedelta(seconds=31), tick=False):
        confirm_run()
    assert limited.requests_seen["eth_sendRawTransaction"] == 2
    confirm_run()
    deposit.refresh_from_db()
    assert deposit.status == "minted"
    assert MintAttempt.objects.count() == 1  # the same bytes: no new signature


# --- The "Done when" scenarios (slow) ---------------------------------------------------------


def _drive(deposits: int, *, seconds: float, pause_s: float = 0.0, per_run=None) -> list[dict]:
    """The tasks' entry points in turn until every deposit is minted; any exception out of
    a task fails the test (a task must never crash)."""
    results = []
    deadline = time.monotonic() + seconds
    while _minted() < deposits and time.monotonic() < deadline:
        for run in (mint_jobs_run, confirm_run):
            results.append(run())
            if per_run is not None:
                per_run()
        time.sleep(pause_s)
    return results


def _rate_limit_storms(proxy, stop: threading.Event) -> None:
    """Rate limits that come and go, as on a shared public endpoint: 1.5 s in which a few
    items a second pass (the rest: -32016 inside batches, HTTP 429 alone), then 3 s calm."""
    while not stop.is_set():
        proxy.rate_limit(per_s=20, burst=20)
        stop.wait(1.5)
        proxy.rate_limit(per_s=None)
        stop.wait(3.0)


@pytest.mark.slow
@pytest.mark.django_db
def test_500_deposits_under_a_batch_limit_and_rate_limits_are_minted_once_each(
    paid_deposit, limited, settings, chain, caplog
):
    settings.RPC_BATCH_MAX = 50
    settings.MINT_BATCH_SIZE = 25  # 75 screening reads a run: split in two
    settings.CIRCUIT_OPEN_S = 1
    limited.batch_limit = 50
    deposits = [paid_deposit(1_000 + i) for i in range(500)]
    stop = threading.Event()
    storms = threading.Thread(target=_rate_limit_storms, args=(limited, stop), daemon=True)
    storms.start()
    try:
        with caplog.at_level(logging.WARNING, logger="minting"):
            results = _drive(len(deposits), seconds=240)
    finally:
        stop.set()
        storms.join()
    _assert_minted_once(chain, deposits)
    assert limited.refusals["batch_too_large"] == 0
    assert max(limited.batch_sizes) <= 50
    assert limited.refusals["item_rate_limited"] + limited.refusals["http_429"] > 0
    assert any(result.get("delayed") for result in results)
    assert "Circuit breaker OPEN" in caplog.text
    assert "Circuit breaker CLOSED" in caplog.text


@pytest.mark.slow
@pytest.mark.django_db
def test_200_deposits_under_the_sender_cap_of_16_with_2_second_blocks(
    paid_deposit, limited, settings, chain, two_second_blocks
):
    settings.MINT_MAX_IN_FLIGHT = 16
    settings.MINT_BATCH_SIZE = 50
    limited.sender_cap = 16
    deposits = [paid_deposit(1_000 + i) for i in range(200)]
    refusals = [limited.refusals["txpool_full"]]

    def one_run_at_most_one_refusal() -> None:
        refusals.append(limited.refusals["txpool_full"])
        assert refusals[-1] - refusals[-2] <= 1

    _drive(len(deposits), seconds=180, pause_s=0.3, per_run=one_run_at_most_one_refusal)
    _assert_minted_once(chain, deposits)
    nonces = sorted(MintAttempt.objects.values_list("nonce", flat=True))
    assert nonces == list(range(nonces[0], nonces[0] + 200))  # one attempt a nonce, none burnt
