"""The reconciliation page in Backstage (issue 14 point 11, DESIGN §9): each list shows what
the database holds (untracked, awaiting record, missing, unexplained burns, in flight) and
the alarm's state; bank admins are refused, compliance officers read without action buttons,
a super admin's entry request waits in the four-eyes queue of another super admin; attaching
a log is offered only where a deposit matches."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.models import DualControlRequest
from deposits.models import Bank, DepositRequest
from minting.models import MintLogClaim, MintTransaction
from reconciliation.models import ChainTransfer, IndexerCursor
from tests.factories import super_admin

pytestmark = pytest.mark.django_db

PAGE = "/backstage/reconciliation/"
ENTRY = "/backstage/reconciliation/entry/"
QUEUE = "/backstage/four-eyes/"
CHAIN = 31337
UNITS = 10**18
OUTSIDER = "0x00000000000000000000000000000000000000A1"
ZERO = "0x0000000000000000000000000000000000000000"


def _hash(n: int) -> str:
    return f"0x{n:064x}"


def _log(n: int, *, kind="mint", to=OUTSIDER, frm=ZERO, units=7 * UNITS, safe=False, block=None):
    return ChainTransfer.objects.create(
        chain_id=CHAIN,
        tx_hash=_hash(n),
        log_index=0,
        block_number=block or 100 + n,
        block_hash=_hash(10_000 + n),
        from_address=frm,
        to_address=to,
        amount_units=units,
        kind=kind,
        safe_executed=safe if kind == "mint" else None,
    )


def _deposit(user, *, status: str, amount: int = 5_000) -> DepositRequest:
    return DepositRequest.objects.create(
        user=user,
        bank=Bank.objects.get(is_zenopay_settlement=True),
        wallet=user.test_wallet,
        chain="base",
        amount_tzs=amount,
        payment_provider="zenopay",
        buyer_phone="+255712345678",
        status=status,
    )


def _cursor(*, supply_before=0, updated_at=None) -> IndexerCursor:
    return IndexerCursor.objects.create(
        name="transfers",
        chain_id=CHAIN,
        block_number=500,
        block_hash=_hash(99_999),
        first_block=10,
        supply_before_units=supply_before,
        updated_at=updated_at or timezone.now(),
    )


@pytest.fixture
def chain_id(settings):
    settings.CHAIN_ID = CHAIN
    settings.SAFE_ADDRESS = ""


@pytest.fixture
def world(chain_id, amina, juma, settlement_bank):
    """One row of each list, as the indexer and the recording path would leave them."""
    untracked = _log(1, units=7 * UNITS + 1)
    matching = _deposit(juma, status="mint_failed", amount=3_000)
    untracked_matching = _log(2, to=juma.test_wallet.address, units=3_000 * UNITS)
    safe_deposit = _deposit(amina, status="mint_requires_safe", amount=9_000)
    awaiting = _log(3, to=amina.test_wallet.address, units=9_000 * UNITS, safe=True)
    burn = _log(4, kind="burn", frm=OUTSIDER, to=ZERO, units=UNITS + UNITS // 2)
    flying_deposit = _deposit(juma, status="mint_requires_safe", amount=12_000)
    in_flight = _log(5, to=juma.test_wallet.address, units=12_000 * UNITS, safe=True)
    MintTransaction.objects.create(
        deposit=flying_deposit,
        chain_id=CHAIN,
        contract_address=OUTSIDER,
        to_address=juma.test_wallet.address,
        amount_units=12_000 * UNITS,
        status="awaiting_confirmations",
        tx_hash=in_flight.tx_hash,
        source="safe",
    )
    minted = _deposit(amina, status="minted", amount=2_000)
    MintLogClaim.objects.create(
        chain_id=CHAIN,
        tx_hash=_hash(6),
        log_index=0,
        deposit=minted,
        claimed_at=timezone.now() - dt.timedelta(minutes=5),
    )
    _cursor()
    return {
        "untracked": untracked,
        "untracked_matching": untracked_matching,
        "matching": matching,
        "awaiting": awaiting,
        "safe_deposit": safe_deposit,
        "burn": burn,
        "in_flight": in_flight,
        "minted": minted,
    }


def _section(html: str, table_id: str) -> str:
    start = html.index(f'id="{table_id}"')
    return html[start : html.index("</table>", start)]


def test_each_list_shows_what_the_database_holds(login, salim, world):
    html = login(salim).get(PAGE).content.decode()

    untracked = _section(html, "untracked-mints")
    assert world["untracked"].tx_hash in untracked
    assert "7.000000000000000001" in untracked  # exact nTZS, never rounded
    assert world["untracked_matching"].tx_hash in untracked
    assert str(world["matching"].pk) in untracked  # the mint_failed deposit it matches
    assert world["awaiting"].tx_hash not in untracked
    assert 'Untracked mints <span class="count">(2)' in html

    awaiting = _section(html, "awaiting-record")
    assert world["awaiting"].tx_hash in awaiting and str(world["safe_deposit"].pk) in awaiting
    assert str(world["minted"].pk) in _section(html, "missing-mints")
    burns = _section(html, "unexplained-burns")
    assert world["burn"].tx_hash in burns and "1.5" in burns
    flying = _section(html, "mints-in-flight")
    assert world["in_flight"].tx_hash in flying
    assert world["in_flight"].tx_hash not in untracked + awaiting
    assert "not armed" not in _section(html, "reconciliation-alarm")
    assert "no supply before block 10" in html
    assert 'href="/backstage/reconciliation/reconciliationentry/"' in html
    assert 'href="/backstage/reconciliation/supplysnapshot/"' in html


def test_the_alarm_says_why_it_is_not_armed(login, salim, chain_id):
    _cursor(supply_before=5 * UNITS)
    html = login(salim).get(PAGE).content.decode()
    alarm = _section(html, "reconciliation-alarm")
    assert "not armed" in alarm and "record one (two people)" in alarm
    assert f"{ENTRY}?type=opening_balance" in html
    form = login(salim).get(f"{ENTRY}?type=opening_balance").content.decode()
    assert 'value="opening_balance" selected' in form
    assert f'value="{5 * UNITS}"' in form and 'value="9"' in form  # the block before indexing


def test_a_bank_admin_is_refused_and_compliance_reads_without_actions(
    login, nmb_admin, neema, salim, world
):
    assert login(nmb_admin).get(PAGE).status_code == 403
    assert login(nmb_admin).get(ENTRY).status_code == 403

    page = login(neema).get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert world["untracked"].tx_hash in html
    assert ENTRY not in html and "/attach/" not in html  # no action buttons
    assert login(neema).get(f"{ENTRY}?log={world['untracked'].pk}").status_code == 403
    # a forged POST reaches the service, which refuses it in its words
    forged = login(neema).post(
        ENTRY,
        {"entry_type": "other", "amount_units": "1", "reason": "x", "block_number": "1"},
        follow=True,
    )
    assert "needs one of the roles super_admin" in forged.content.decode()
    assert not DualControlRequest.objects.exists()

    index = login(neema).get("/backstage/").content.decode()
    assert f'href="{PAGE}"' in index
    assert f'href="{PAGE}"' not in login(nmb_admin).get("/backstage/").content.decode()

    html = login(salim).get(PAGE).content.decode()
    assert f"{ENTRY}?log={world['untracked'].pk}" in html
    assert f"{ENTRY}?log={world['burn'].pk}" in html
    # attaching is offered where a deposit matches the recipient and amount only
    assert f"/backstage/reconciliation/logs/{world['untracked_matching'].pk}/attach/" in html
    assert f"/backstage/reconciliation/logs/{world['untracked'].pk}/attach/" not in html
    assert f"/backstage/reconciliation/logs/{world['awaiting'].pk}/attach/" in html


def test_the_entry_form_is_prefilled_from_the_log_it_explains(login, salim, world):
    mint = login(salim).get(f"{ENTRY}?log={world['untracked'].pk}").content.decode()
    assert 'value="untracked_mint" selected' in mint
    assert f'value="{7 * UNITS + 1}"' in mint and world["untracked"].tx_hash in mint
    burn = login(salim).get(f"{ENTRY}?log={world['burn'].pk}").content.decode()
    assert 'value="burn" selected' in burn
    assert f'value="-{UNITS + UNITS // 2}"' in burn and f'value="{OUTSIDER}"' in burn


def test_a_super_admins_entry_request_waits_for_another_super_admin(login, salim, chain_id):
    _cursor(supply_before=5 * UNITS)
    made = login(salim).post(
        ENTRY,
        {
            "entry_type": "opening_balance",
            "amount_units": str(5 * UNITS),
            "reason": "supply of the legacy token before this system",
            "evidence": "totalSupply at block 9 read on the explorer",
            "block_number": "9",
        },
        follow=True,
    )
    assert "Entry requested" in made.content.decode()
    request = DualControlRequest.objects.get()
    assert (request.action, request.maker, request.decision) == (
        "reconciliation.entry",
        salim,
        "pending",
    )
    assert request.params["amount_units"] == str(5 * UNITS)
    assert "reconciliation.entry" in _section(made.content.decode(), "reconciliation-pending")
    # another super admin finds it in Waiting for me and approves it
    other = super_admin(email="khamis@ntzs.test")
    queue = login(other).get(QUEUE).content.decode()
    assert f"{QUEUE}{request.pk}/" in queue
    approved = login(other).post(f"{QUEUE}{request.pk}/approve/", {"approve-reason": "seen"})
    assert approved.status_code == 302
    html = login(other).get(PAGE).content.decode()
    assert "An opening balance entry states the supply at block 9" in html


def test_a_refused_entry_is_shown_in_the_services_words(login, salim, chain_id):
    refused = login(salim).post(
        ENTRY,
        {"entry_type": "burn", "amount_units": "5", "reason": "x", "block_number": "1"},
        follow=True,
    )
    assert "its amount must be negative" in refused.content.decode()
    assert not DualControlRequest.objects.exists()


def test_the_attach_page_shows_the_log_and_the_deposit_it_matches(login, salim, neema, world):
    url = f"/backstage/reconciliation/logs/{world['untracked_matching'].pk}/attach/"
    assert login(neema).get(url).status_code == 403
    html = login(salim).get(url).content.decode()
    candidates = _section(html, "attach-candidates")
    assert str(world["matching"].pk) in candidates and "mint_failed" in candidates
    assert f'value="{world["matching"].pk}"' in html  # the one match, prefilled
    assert world["untracked_matching"].tx_hash in _section(html, "attach-log")
    burn = f"/backstage/reconciliation/logs/{world['burn'].pk}/attach/"
    assert login(salim).get(burn).status_code == 404
    refused = login(salim).post(
        url, {"deposit_id": str(world["matching"].pk), "evidence": ""}, follow=True
    )
    assert "This field is required." in refused.content.decode()
    assert not DualControlRequest.objects.exists()
