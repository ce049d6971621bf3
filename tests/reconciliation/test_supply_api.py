"""The public supply endpoints (DESIGN §8, issue 14 point 6): anonymous, throttled, in the
schema; served from the last snapshot while it is under 15 minutes old, 503 with a sentence
after; the plain-text figures 503 as soon as the last snapshot is unavailable; circulating =
total minus the balances of TREASURY_ADDRESSES; never 0 for unknown."""

from __future__ import annotations

import datetime as dt

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from core.clock import now
from minting.breaker import rpc_breaker
from minting.chain import role_id
from reconciliation.models import SupplySnapshot
from reconciliation.services.matching import index_chain_run
from reconciliation.services.snapshots import supply_snapshot_take
from tests.support.anvil import DEV_ADDRESSES

UNITS = 10**18
SUPPLY = 12_000 * UNITS + 5 * UNITS // 10  # 12000.5 nTZS


def snapshot(minutes_ago: float, *, readable: bool = True, treasury=0) -> SupplySnapshot:
    return SupplySnapshot.objects.create(
        at=now() - dt.timedelta(minutes=minutes_ago),
        chain_id=31337,
        block_number=100 if readable else None,
        onchain_supply_units=SUPPLY if readable else None,
        db_minted_tzs=12_000,
        deposits_minted_tzs=12_000,
        reconciled_units=5 * UNITS // 10,
        in_flight_tzs=0,
        discrepancy_units=0 if readable else None,
        unavailable_reason="" if readable else "The latest block could not be read.",
        treasury_units=treasury if readable else None,
    )


@pytest.fixture
def api():
    return APIClient()


@pytest.mark.django_db
def test_a_fresh_snapshot_is_served_with_its_age_and_exact_figures(api):
    snapshot(5, treasury=2 * UNITS)
    answer = api.get("/api/v1/supply")
    assert answer.status_code == 200
    body = answer.json()
    assert body["onchain_supply"] == "12000.500000000000000000"
    assert body["db_minted"] == "12000.000000000000000000"
    assert body["reconciled"] == "0.500000000000000000"
    assert body["discrepancy"] == "0.000000000000000000"
    assert body["circulating_supply"] == "11998.500000000000000000"
    assert (body["block_number"], body["decimals"], body["chain_id"]) == (100, 18, 31337)
    assert 295 <= body["snapshot_age_seconds"] <= 310
    assert body["latest_read_available"] is True

    total = api.get("/api/v1/supply/total")
    assert total.status_code == 200 and total["Content-Type"].startswith("text/plain")
    assert total.content.decode() == "12000.500000000000000000"
    assert api.get("/api/v1/supply/circulating").content.decode() == "11998.500000000000000000"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/api/v1/supply", "/api/v1/supply/total", "/api/v1/supply/circulating"]
)
def test_a_snapshot_older_than_fifteen_minutes_is_a_503_with_a_sentence(api, url):
    snapshot(16)
    answer = api.get(url)
    assert answer.status_code == 503
    assert "supply is unavailable" in answer.content.decode()
    assert "12000" not in answer.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/supply", "/api/v1/supply/total"])
def test_no_snapshot_yet_is_a_503_not_zero(api, url):
    answer = api.get(url)
    assert answer.status_code == 503 and "0.0" not in answer.content.decode()


@pytest.mark.django_db
def test_rpc_down_json_keeps_the_last_readable_snapshot_while_fresh_plain_text_refuses(
    api, time_machine
):
    snapshot(3)
    snapshot(0, readable=False)  # the newest run could not read the chain
    body = api.get("/api/v1/supply").json()
    assert body["onchain_supply"] == "12000.500000000000000000"
    assert body["latest_read_available"] is False
    assert api.get("/api/v1/supply/total").status_code == 503
    assert api.get("/api/v1/supply/circulating").status_code == 503

    time_machine.move_to(now() + dt.timedelta(minutes=13), tick=False)  # readable: 16 min
    assert api.get("/api/v1/supply").status_code == 503


@pytest.mark.django_db
def test_the_endpoints_are_anonymous_throttled_and_in_the_schema(api, monkeypatch):
    snapshot(1)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"supply": "3/min"})
    codes = [api.get("/api/v1/supply/total").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in ("/api/v1/supply", "/api/v1/supply/total", "/api/v1/supply/circulating"):
        assert set(paths[path]) == {"get"}
        assert paths[path]["get"]["security"] == [{}]  # anonymous
    assert "text/plain" in paths["/api/v1/supply/total"]["get"]["responses"]["200"]["content"]


@pytest.mark.django_db
def test_circulating_is_total_minus_the_treasury_balances_on_chain(
    chain_settings, settings, api, two_super_admins_and_mints
):
    chain = chain_settings
    treasury = [DEV_ADDRESSES[5], DEV_ADDRESSES[6]]
    settings.TREASURY_ADDRESSES = treasury
    supply_snapshot_take()

    total = api.get("/api/v1/supply/total").content.decode()
    circulating = api.get("/api/v1/supply/circulating").content.decode()

    on_chain_total = chain.contract.functions.totalSupply().call()
    balances = sum(chain.contract.functions.balanceOf(a).call() for a in treasury)
    assert balances == 3 * UNITS + 1 and on_chain_total == 4 * UNITS + 1 + UNITS // 4
    whole, fraction = divmod(on_chain_total - balances, UNITS)
    assert circulating == f"{whole}.{fraction:018d}" == "1.250000000000000000"
    assert total == "4.250000000000000001"


@pytest.fixture
def two_super_admins_and_mints(chain_settings, settings):
    """Mints made on the contract by the admin key, each explained by an entry (two people),
    and the chain indexed."""
    from core.services import dual_control_approve
    from reconciliation.services.entries import reconciliation_entry_request
    from tests.factories import super_admin

    chain = chain_settings
    settings.NTZS_DEPLOY_BLOCK = chain.deploy_block
    settings.MINT_CONFIRMATIONS = 1
    rpc_breaker().reset()
    chain.transact(
        chain.admin_key,
        chain.contract.functions.grantRole(role_id("MINTER_ROLE"), chain.admin_address),
    )
    maker, checker = super_admin(email="m@ntzs.test"), super_admin(email="c@ntzs.test")
    for to, units in (
        (DEV_ADDRESSES[5], 3 * UNITS),
        (DEV_ADDRESSES[6], 1),
        (DEV_ADDRESSES[7], UNITS + UNITS // 4),
    ):
        receipt = chain.transact(chain.admin_key, chain.contract.functions.mint(to, units))
        request = reconciliation_entry_request(
            maker=maker,
            entry_type="test_mint",
            amount_units=units,
            reason="float",
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            log_index=receipt["logs"][0]["logIndex"],
        )
        dual_control_approve(request_id=request.pk, checker=checker)
    index_chain_run()
    yield
    rpc_breaker().reset()


@pytest.mark.django_db
def test_unknown_treasury_balances_make_only_circulating_unavailable(api):
    snapshot(2, treasury=None)
    assert api.get("/api/v1/supply/total").content.decode() == "12000.500000000000000000"
    assert api.get("/api/v1/supply/circulating").status_code == 503
    assert api.get("/api/v1/supply").json()["circulating_supply"] is None
