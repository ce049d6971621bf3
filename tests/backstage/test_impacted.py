"""Impacted addresses in Backstage (issue 15 point 2; DESIGN §9 "incident record and report"):
compliance officers and super admins read it, bank admins and role-less superusers are
refused; ``?address=`` and ``?tx=`` (an incident record's links) run the lookup; the CSV
export holds exactly the rows the screen shows, free text guarded against spreadsheet
formulas; an unreadable chain is a sentence on the page, never a 500."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest

from deposits.models import Bank, DepositRequest
from minting.breaker import rpc_breaker
from minting.chain import ZERO_ADDRESS, role_id
from reconciliation.models import ChainTransfer, IndexerCursor
from reconciliation.services.matching import index_chain_run
from tests.factories import WalletFactory, customer
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS, free_loopback_port

PAGE = "/backstage/impacted/"
CSV = "/backstage/impacted/csv/"
CHAIN = 31337
UNITS = 10**18
A, B, C, D, E = DEV_ADDRESSES[3:8]
A_KEY, B_KEY, C_KEY = DEV_PRIVATE_KEYS[3:6]


class ScreenRows(HTMLParser):
    """The page's rows: each element with class ``impact-line`` as (section, {col: text})."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, dict[str, str]]] = []
        self._col: str | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "impact-line" in (attrs.get("class") or "").split():
            self.rows.append((attrs["data-section"], {}))
        if attrs.get("data-col") and self.rows:
            self._col, self._depth = attrs["data-col"], 0
            self.rows[-1][1][self._col] = ""
        elif self._col:
            self._depth += 1

    def handle_endtag(self, tag):
        if self._col:
            if self._depth == 0:
                self.rows[-1][1][self._col] = self.rows[-1][1][self._col].strip()
                self._col = None
            else:
                self._depth -= 1

    def handle_data(self, data):
        if self._col:
            self.rows[-1][1][self._col] += data


def screen_rows(response) -> list[tuple[str, dict[str, str]]]:
    parser = ScreenRows()
    parser.feed(response.content.decode())
    return parser.rows


def csv_rows(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def assert_csv_is_the_screen(page, export) -> list[dict[str, str]]:
    shown, exported = screen_rows(page), csv_rows(export)
    assert len(shown) == len(exported) and shown
    for (section, cells), row in zip(shown, exported, strict=True):
        assert row["section"] == section
        for column, text in cells.items():
            # free text a spreadsheet would run as a formula is exported behind a quote
            formula = column in ("customer", "note") and text[:1] in ("=", "+", "-", "@")
            assert row[column] == ("'" + text if formula else text), (section, column)
    return exported


@pytest.fixture
def chain_down(settings):
    """No node answers: every live read fails at once."""
    settings.BASE_SEPOLIA_RPC_URL = f"http://127.0.0.1:{free_loopback_port()}"
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""
    settings.CHAIN_ID = CHAIN
    rpc_breaker().reset()
    yield
    rpc_breaker().reset()


def _log(n: int, *, frm: str, to: str, units: int, block: int, kind="transfer", log_index=0):
    return ChainTransfer.objects.create(
        chain_id=CHAIN,
        tx_hash=f"0x{n:064x}",
        log_index=log_index,
        block_number=block,
        block_hash=f"0x{10_000 + n:064x}",
        from_address=frm,
        to_address=to,
        amount_units=units,
        kind=kind,
    )


# --- Who may read it ------------------------------------------------------------------------


@pytest.mark.django_db
def test_bank_admins_and_role_less_superusers_are_refused_page_and_csv(
    login, nmb_admin, root, chain_down
):
    for person in (nmb_admin, root):
        client = login(person)
        assert client.get(PAGE).status_code == 403
        assert client.get(CSV, {"address": A}).status_code == 403
        assert "Impacted addresses" not in client.get("/backstage/").content.decode()


@pytest.mark.django_db
def test_compliance_and_super_admins_open_it_from_the_home_page(login, neema, salim):
    for person in (neema, salim):
        client = login(person)
        home = client.get("/backstage/").content.decode()
        assert f'href="{PAGE}"' in home
        page = client.get(PAGE)
        assert page.status_code == 200
        assert 'id="impacted-form"' in page.content.decode()


@pytest.mark.django_db
def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get(PAGE, {"address": A})
    assert response.status_code == 302 and "login" in response["Location"]


# --- An address -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_address_link_shows_its_customer_deposits_and_transfers_and_the_csv_matches(
    login, neema, chain_down, settlement_bank
):
    amina = customer(full_name='=HYPERLINK("http://evil.example","x")')
    wallet = WalletFactory(user=amina, verified=True)
    deposit = DepositRequest.objects.create(
        user=amina,
        bank=Bank.objects.get(is_zenopay_settlement=True),
        wallet=wallet,
        chain="base",
        amount_tzs=5_000,
        payment_provider="zenopay",
        buyer_phone="+255712345678",
        status="minted",
    )
    mint = _log(1, frm=ZERO_ADDRESS, to=wallet.address, units=5_000 * UNITS, block=10, kind="mint")
    out = _log(2, frm=wallet.address, to=B, units=UNITS + UNITS // 2, block=11)
    _log(3, frm=C, to=D, units=UNITS, block=12)  # not this address's
    client = login(neema)

    page = client.get(PAGE, {"address": wallet.address.lower()})

    assert page.status_code == 200
    body = page.content.decode()
    assert f'value="{wallet.address}"' in body  # the form prefilled, in EIP-55
    assert f"/backstage/deposits/depositrequest/{deposit.pk}/change/" in body
    assert "The chain could not be read" in body  # a sentence, not a 500
    shown = screen_rows(page)
    transfers = [cells for section, cells in shown if section == "transfer"]
    assert [(t["transaction"], t["direction"], t["amount_ntzs"]) for t in transfers] == [
        (out.tx_hash, "out", "1.5"),
        (mint.tx_hash, "in", "5000"),
    ]
    assert [cells["deposit"] for section, cells in shown if section == "deposit"] == [
        str(deposit.pk)
    ]

    export = client.get(CSV, {"address": wallet.address})

    rows = assert_csv_is_the_screen(page, export)
    wallet_row = next(row for row in rows if row["section"] == "wallet")
    # the name a customer typed cannot run as a formula in a spreadsheet
    assert wallet_row["customer"].startswith("'=HYPERLINK(")
    assert next(r for r in rows if r["section"] == "transfer")["amount_units"] == str(
        UNITS + UNITS // 2
    )


@pytest.mark.django_db
def test_an_address_pages_its_transfers_and_the_csv_exports_the_page_shown(
    login, salim, chain_down, monkeypatch
):
    monkeypatch.setattr("backstage.impacted.TRANSFERS_PER_PAGE", 2)
    logs = [_log(n, frm=A, to=B, units=n * UNITS, block=20 + n) for n in range(1, 6)]
    client = login(salim)

    first = client.get(PAGE, {"address": A})
    shown = [c["transaction"] for s, c in screen_rows(first) if s == "transfer"]
    assert shown == [logs[4].tx_hash, logs[3].tx_hash]
    body = first.content.decode()
    assert 'id="impacted-older"' in body
    older = f"before={logs[3].block_number}-0"
    assert older in body

    second = client.get(f"{PAGE}?address={A}&{older}")
    shown = [c["transaction"] for s, c in screen_rows(second) if s == "transfer"]
    assert shown == [logs[2].tx_hash, logs[1].tx_hash]
    assert 'id="impacted-newest"' in second.content.decode()

    export = client.get(f"{CSV}?address={A}&{older}")
    rows = assert_csv_is_the_screen(second, export)
    assert [r["transaction"] for r in rows if r["section"] == "transfer"] == shown


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        ({"q": "0x1234"}, "is not an address"),
        ({"address": "0x" + "g" * 40}, "is not an address"),
        ({"tx": "0xabc"}, "is not a transaction hash"),
        ({"q": ZERO_ADDRESS}, "zero address"),
    ],
)
def test_a_value_that_cannot_be_looked_up_is_a_sentence_on_the_form(
    login, neema, chain_down, params, sentence
):
    page = login(neema).get(PAGE, params)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="impacted-error"' in body and sentence in body
    assert 'id="impacted-csv"' not in body


@pytest.mark.django_db
def test_a_transaction_the_indexer_does_not_hold_says_so(login, neema, chain_down):
    IndexerCursor.objects.create(
        name="transfers", chain_id=CHAIN, block_number=77, block_hash="0x" + "11" * 32
    )
    page = login(neema).get(PAGE, {"tx": "0x" + "ab" * 32})
    body = page.content.decode()
    assert page.status_code == 200
    assert "holds no token transfer" in body and "indexed up to block 77" in body


# --- A transaction, on the local chain ------------------------------------------------------


@pytest.fixture
def money_trail(chain_settings, settings):
    """A suspicious mint of 1,000 nTZS to A; A→B 900, B→C 300, B→D 200, C→E 100; indexed;
    C blacklisted afterwards. Returns the mint's hash and the hashes of the hops."""
    settings.MINT_CONFIRMATIONS = 1
    settings.NTZS_DEPLOY_BLOCK = chain_settings.deploy_block
    rpc_breaker().reset()
    chain = chain_settings
    token = chain.contract.functions
    chain.transact(chain.admin_key, token.grantRole(role_id("MINTER_ROLE"), chain.admin_address))

    def tx(receipt) -> str:
        return "0x" + bytes(receipt["transactionHash"]).hex()

    hashes = {"mint": tx(chain.transact(chain.admin_key, token.mint(A, 1_000 * UNITS)))}
    for name, key, to, tzs in (
        ("a_b", A_KEY, B, 900),
        ("b_c", B_KEY, C, 300),
        ("b_d", B_KEY, D, 200),
        ("c_e", C_KEY, E, 100),
    ):
        hashes[name] = tx(chain.transact(key, token.transfer(to, tzs * UNITS)))
    chain.transact(chain.admin_key, token.blacklist(C))
    assert index_chain_run()["transfers"]["outcome"] == "indexed"
    yield hashes
    rpc_breaker().reset()


@pytest.mark.django_db
def test_a_suspicious_mint_shows_two_hops_with_live_state_and_the_csv_matches(
    login, neema, money_trail
):
    client = login(neema)

    page = client.get(PAGE, {"tx": money_trail["mint"].upper().replace("0X", "0x")})

    assert page.status_code == 200
    shown = screen_rows(page)
    tx_rows = [c for s, c in shown if s == "transaction"]
    assert [(r["from"], r["to"], r["amount_ntzs"]) for r in tx_rows] == [(ZERO_ADDRESS, A, "1000")]
    onward = [(c["hop"], c["transaction"], c["from"], c["to"]) for s, c in shown if s == "onward"]
    assert onward == [
        ("1", money_trail["a_b"], A, B),
        ("2", money_trail["b_c"], B, C),
        ("2", money_trail["b_d"], B, D),
    ]
    assert money_trail["c_e"] not in page.content.decode()
    addresses = {c["address"]: c for s, c in shown if s == "address"}
    assert list(addresses) == [A, B, C, D]
    assert addresses[B]["balance_ntzs"] == "400"
    assert (addresses[C]["balance_ntzs"], addresses[C]["blacklisted"]) == ("200", "yes")
    assert addresses[D]["frozen"] == "no"

    export = client.get(CSV, {"tx": money_trail["mint"]})

    rows = assert_csv_is_the_screen(page, export)
    assert [r["section"] for r in rows].count("onward") == 3

    three = client.get(PAGE, {"q": money_trail["mint"], "hops": "3"})
    assert money_trail["c_e"] in three.content.decode()
    assert_csv_is_the_screen(three, client.get(CSV, {"tx": money_trail["mint"], "hops": "3"}))
