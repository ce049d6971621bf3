"""Fees that match Base (DESIGN §7.4, issue 10 item 4): new signatures carry headroom over the
next block's base fee (read from eth_feeHistory, not the pending block), a fee bump goes only
to the lowest unmined nonce and only when it is underpriced, and MINT_MAX_FEE_PER_GAS_WEI caps
every fee and opens the "mint fee cap reached" alert when it is reached."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import time_machine

from core.models import Alert
from deposits.models import DepositRequest
from minting.breaker import rpc_breaker
from minting.models import MintAttempt
from minting.rpc import mint_client
from minting.services.runner import confirm_run, mint_jobs_run
from minting.services.sending import FEE_CAP_ALERT
from minting.signing import BASE_FEE_HEADROOM, Fees, fees_bumped, fees_quote

GWEI = 10**9
AS = MintAttempt.Status
BUMP = MintAttempt.Kind.FEE_BUMP


# --- The fee arithmetic ------------------------------------------------------------------------


def test_a_new_signature_offers_headroom_over_the_next_base_fee_plus_the_tip():
    quote = fees_quote(base_fee=10 * GWEI, tip=GWEI, cap=10**15)
    assert quote.fees == Fees(BASE_FEE_HEADROOM * 10 * GWEI + GWEI, GWEI)
    assert BASE_FEE_HEADROOM >= 3  # Base's growth over the 60 s bump window is about 3x
    assert not quote.capped


def test_a_new_signature_never_offers_more_than_the_cap():
    quote = fees_quote(base_fee=10 * GWEI, tip=GWEI, cap=20 * GWEI)
    assert quote.fees.max_fee_per_gas == 20 * GWEI
    assert quote.capped and quote.wanted_max_fee == 41 * GWEI
    assert not quote.fees.underpriced(base_fee=10 * GWEI, tip=GWEI)  # still includable
    assert fees_quote(base_fee=30 * GWEI, tip=GWEI, cap=20 * GWEI).fees.underpriced(
        base_fee=30 * GWEI, tip=GWEI
    )


@pytest.mark.parametrize(
    ("fees", "base_fee", "tip", "underpriced"),
    [
        (Fees(41 * GWEI, GWEI), 10 * GWEI, GWEI, False),  # signed with headroom
        (Fees(41 * GWEI, GWEI), 40 * GWEI, GWEI, False),  # the headroom absorbed a spike
        (Fees(41 * GWEI, GWEI), 41 * GWEI, GWEI, True),  # no tip left at this base fee
        (Fees(41 * GWEI, GWEI), 90 * GWEI, GWEI, True),  # priced out
        (Fees(41 * GWEI, GWEI), 10 * GWEI, 2 * GWEI, True),  # outbid: the market tips more
    ],
)
def test_fees_are_underpriced_when_the_next_block_leaves_them_less_than_the_tip_asked(
    fees, base_fee, tip, underpriced
):
    assert fees.underpriced(base_fee=base_fee, tip=tip) is underpriced


def test_a_bump_outbids_the_previous_fees_by_more_than_the_pools_ten_percent():
    previous = Fees(41 * GWEI, GWEI)
    quote = fees_bumped(previous, base_fee=10 * GWEI, tip=GWEI, cap=10**15)
    assert quote.fees.max_fee_per_gas * 100 >= previous.max_fee_per_gas * 112
    assert quote.fees.max_priority_fee_per_gas * 100 >= previous.max_priority_fee_per_gas * 112
    assert quote.replaces(previous) and not quote.capped
    spike = fees_bumped(previous, base_fee=100 * GWEI, tip=GWEI, cap=10**15)
    assert spike.fees.max_fee_per_gas >= BASE_FEE_HEADROOM * 100 * GWEI


def test_the_cap_cuts_a_bump_and_then_stops_the_next_one():
    previous = Fees(41 * GWEI, GWEI)
    cut = fees_bumped(previous, base_fee=100 * GWEI, tip=GWEI, cap=50 * GWEI)
    assert cut.capped and cut.fees.max_fee_per_gas == 50 * GWEI
    assert cut.replaces(previous)  # still worth sending: it outbids what is in the pool
    again = fees_bumped(cut.fees, base_fee=100 * GWEI, tip=GWEI, cap=50 * GWEI)
    assert again.capped and not again.replaces(cut.fees)  # the node would refuse it


# --- Through the Base-like proxy, with transactions left pending --------------------------------


@pytest.fixture
def pending_chain(base_proxy, minting, anvil_node, settings) -> Iterator:
    """Blocks only when the test mines one (so sent mints stay pending), the breaker reset,
    anvil's base fee put back afterwards."""
    settings.CIRCUIT_OPEN_S = 0
    settings.MINT_FEE_BUMP_AFTER_S = 60
    rpc_breaker().reset()
    anvil_node.rpc("evm_setAutomine", False)
    try:
        yield anvil_node
    finally:
        anvil_node.rpc("anvil_setNextBlockBaseFeePerGas", hex(GWEI))
        anvil_node.rpc("evm_setAutomine", True)
        rpc_breaker().reset()


def spike(node, base_fee: int) -> None:
    """The next block charges ``base_fee`` (anvil leaves out what cannot pay it)."""
    node.rpc("anvil_setNextBlockBaseFeePerGas", hex(base_fee))
    node.rpc("evm_mine")


def bumps() -> list[tuple[int, int]]:
    return list(
        MintAttempt.objects.filter(kind=BUMP)
        .order_by("created_at")
        .values_list("nonce", "max_fee_per_gas")
    )


def minted() -> int:
    return DepositRequest.objects.filter(status="minted").count()


def cap_alert_open() -> bool:
    return Alert.objects.filter(kind=FEE_CAP_ALERT, resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_the_base_fee_comes_from_fee_history_and_follows_a_spike(pending_chain, base_proxy):
    spike(pending_chain, 10**13)
    assert mint_client().next_base_fee() == 10**13 * 7 // 8  # an empty block: down 12.5 %
    assert base_proxy.requests_seen["eth_feeHistory"] == 1


@pytest.mark.django_db
def test_a_base_fee_spike_bumps_only_the_lowest_unmined_nonce_and_only_when_underpriced(
    pending_chain, paid_deposit, chain
):
    deposits = [paid_deposit(1_000 + i) for i in range(3)]
    assert mint_jobs_run()["sent"] == {"sent": 3}
    first = chain.w3.eth.get_transaction_count(chain.minter_address)
    start = dt.datetime.now(dt.UTC)

    with time_machine.travel(start + dt.timedelta(seconds=120), tick=False):
        assert "fee_bump" not in confirm_run()  # pending two minutes, but not underpriced
    assert bumps() == []

    spike(pending_chain, 10**13)  # 10,000 gwei: all three priced out
    with time_machine.travel(start + dt.timedelta(seconds=240), tick=False):
        counts = confirm_run()
    # anvil drops what the spike priced out: the lowest nonce, sent again and refused as
    # underpriced, is bumped at once; the next one, refused too, waits for its turn (and the
    # one above it is not even tried).
    assert counts == {"fee_bump": 1, "underpriced_waiting": 1}
    assert [nonce for nonce, _ in bumps()] == [first]
    assert int(bumps()[0][1]) >= BASE_FEE_HEADROOM * (10**13 * 7 // 8)

    pending_chain.rpc("evm_mine")  # the bumped one lands; the others are still priced out
    with time_machine.travel(start + dt.timedelta(seconds=360), tick=False):
        counts = confirm_run()
    assert minted() == 1
    assert [nonce for nonce, _ in bumps()] == [first, first + 1]  # the next lowest, alone

    for step in range(2, 5):
        pending_chain.rpc("evm_mine")
        with time_machine.travel(start + dt.timedelta(seconds=360 + 120 * step), tick=False):
            confirm_run()
    assert minted() == 3
    assert [nonce for nonce, _ in bumps()] == [first, first + 1, first + 2]
    assert (
        chain.contract.functions.totalSupply().call()
        == sum(d.amount_tzs for d in deposits) * 10**18
    )
    assert not cap_alert_open()


@pytest.mark.django_db
def test_the_fee_cap_stops_the_bumps_and_alerts_until_fees_fit_again(
    pending_chain, paid_deposit, chain, settings
):
    settings.MINT_MAX_FEE_PER_GAS_WEI = 50 * GWEI
    deposits = [paid_deposit(1_000 + i) for i in range(2)]
    assert mint_jobs_run()["sent"] == {"sent": 2}
    first = chain.w3.eth.get_transaction_count(chain.minter_address)
    start = dt.datetime.now(dt.UTC)

    spike(pending_chain, 100 * GWEI)  # the market asks 4 x 87.5 gwei: far above the cap
    with time_machine.travel(start + dt.timedelta(seconds=120), tick=False):
        counts = confirm_run()
    # The bump is cut to the cap and signed; anvil refuses it for now (below the base fee),
    # so it waits signed, like the nonce above it.
    assert counts == {"fee_bump_refused": 1, "underpriced_waiting": 1}
    assert bumps() == [(first, 50 * GWEI)]
    assert cap_alert_open()
    assert "MINT_MAX_FEE_PER_GAS_WEI is 50000000000" in Alert.objects.get(kind=FEE_CAP_ALERT).detail

    with time_machine.travel(start + dt.timedelta(seconds=240), tick=False):
        counts = confirm_run()
    assert counts.get("fee_cap") == 1 and "fee_bump" not in counts  # the cap stops them
    assert bumps() == [(first, 50 * GWEI)]

    late = paid_deposit(3_000)  # nothing new is signed that the next block would not take
    result = mint_jobs_run()
    assert result["signed"] == 0
    assert result["waiting"].startswith("fees are above MINT_MAX_FEE_PER_GAS_WEI")
    assert cap_alert_open()

    spike(pending_chain, GWEI)  # the spike passes: the capped bump and the other mint go out
    with time_machine.travel(start + dt.timedelta(seconds=360), tick=False):
        confirm_run()
        pending_chain.rpc("evm_mine")
        confirm_run()
        assert minted() == 2
        assert mint_jobs_run()["signed"] == 1
        assert not cap_alert_open()
        pending_chain.rpc("evm_mine")
        confirm_run()
    late.refresh_from_db()
    assert late.status == "minted" and minted() == 3
    assert len(bumps()) == 1
    assert (
        chain.contract.functions.totalSupply().call()
        == (sum(d.amount_tzs for d in deposits) + 3_000) * 10**18
    )
