"""Impacted addresses in a browser, on anvil (issue 15 point 2): after a suspicious mint of
1,000 nTZS to A, A→B, B→C and B→D, C→E, indexed by the real indexer, a compliance officer
opens the page from the home page, looks the mint up and sees two hops (A→B; B→C, B→D; not
C→E) with each address's live balance and state and the customer behind B; the CSV she
downloads holds the rows of the screen; B's own page shows its balance, its customer and its
transfers. Screenshots: var/screenshots/backstage-impacted.png (the transaction view) and
backstage-impacted-address.png (B's page)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from minting.breaker import rpc_breaker
from minting.chain import role_id
from reconciliation.services.matching import index_chain_run
from tests.browser.support import DESKTOP, assert_layout, screenshot, staff_session_cookie
from tests.factories import WalletFactory, compliance_officer, customer
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS

UNITS = 10**18
A, B, C, D, E = DEV_ADDRESSES[3:8]
A_KEY, B_KEY, C_KEY = DEV_PRIVATE_KEYS[3:6]


def _trail(chain) -> dict[str, str]:
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
    return hashes


def _table(page, selector: str) -> list[dict[str, str]]:
    """The rows of a table on the page: {data-col: text} per row."""
    return page.eval_on_selector_all(
        f"{selector} tr.impact-line",
        """rows => rows.map(row => Object.fromEntries(
            [...row.querySelectorAll('[data-col]')].map(td => [td.dataset.col, td.innerText.trim()])
        ))""",
    )


def test_a_compliance_officer_follows_a_suspicious_mint_two_hops_and_exports_it(
    open_tab, site, chain_settings, settings
):
    settings.NTZS_DEPLOY_BLOCK = chain_settings.deploy_block
    settings.MINT_CONFIRMATIONS = 1
    rpc_breaker().reset()
    hashes = _trail(chain_settings)
    assert index_chain_run()["transfers"]["outcome"] == "indexed"
    WalletFactory(user=customer(full_name="Amina Juma"), address=B, verified=True)
    neema = compliance_officer()

    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(neema, site)])
    tab.goto(f"{site}/backstage/")
    tab.page.locator(".backstage-pages").get_by_role("link", name="Impacted addresses").click()
    tab.page.wait_for_selector("#impacted-form")
    tab.page.fill("#id_q", hashes["mint"])
    tab.page.get_by_role("button", name="Look up").click()
    tab.page.wait_for_selector("#impacted-onward")

    onward = _table(tab.page, "#impacted-onward")
    assert [(r["hop"], r["transaction"], r["from"], r["to"], r["amount_ntzs"]) for r in onward] == [
        ("1", hashes["a_b"], A, B, "900"),
        ("2", hashes["b_c"], B, C, "300"),
        ("2", hashes["b_d"], B, D, "200"),
    ]
    assert hashes["c_e"] not in tab.page.content()
    addresses = {r["address"]: r for r in _table(tab.page, "#impacted-addresses")}
    assert list(addresses) == [A, B, C, D]
    assert (addresses[B]["balance_ntzs"], addresses[B]["customer"]) == (
        "400",
        "Amina Juma <amina@ntzs.test>",
    )
    assert (addresses[C]["balance_ntzs"], addresses[C]["blacklisted"]) == ("200", "yes")
    screenshot(tab.page, "backstage-impacted")
    assert_layout(tab.page, "Backstage impacted addresses")

    with tab.page.expect_download() as download:
        tab.page.click("#impacted-csv")
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    shown = tab.page.eval_on_selector_all(
        "tr.impact-line, li.impact-line", "rows => rows.map(row => row.dataset.section)"
    )
    assert [row["section"] for row in exported] == shown
    assert [
        (r["hop"], r["transaction"], r["from"], r["to"], r["amount_ntzs"])
        for r in exported
        if r["section"] == "onward"
    ] == [(r["hop"], r["transaction"], r["from"], r["to"], r["amount_ntzs"]) for r in onward]
    assert [(r["address"], r["balance_ntzs"], r["blacklisted"]) for r in exported][-4:] == [
        (a, addresses[a]["balance_ntzs"], addresses[a]["blacklisted"]) for a in (A, B, C, D)
    ]

    tab.page.locator("#impacted-addresses").get_by_role("link", name=B).click()
    tab.page.wait_for_selector("#impacted-state")
    assert tab.page.input_value("#id_q") == B
    state = _table(tab.page, "#impacted-state")[0]
    assert (state["balance_ntzs"], state["frozen"], state["blacklisted"]) == ("400", "no", "no")
    assert "Amina Juma" in tab.page.locator("#impacted-wallets").inner_text()
    transfers = _table(tab.page, "#impacted-transfers")
    assert [(r["direction"], r["transaction"]) for r in transfers] == [
        ("out", hashes["b_d"]),
        ("out", hashes["b_c"]),
        ("in", hashes["a_b"]),
    ]
    screenshot(tab.page, "backstage-impacted-address")
    assert_layout(tab.page, "Backstage impacted addresses, one address")
    assert tab.failed_requests == [] and tab.console_errors == []
