"""The Safe lane in a browser: a super admin selects a deposit in the Safe queue, previews its
batch file (nothing exported yet), downloads it, the local Safe on anvil executes the file's
transaction, and the hash entered in the Safe record form is answered "awaiting
confirmations" and then, once the blocks are mined, "minted". Screenshots:
var/screenshots/backstage-safe-queue-en.png, backstage-safe-preview-en.png and
backstage-safe-record-en.png; and, on a token without deposit references, the loud warning
of a second export (backstage-safe-preview-danger-en.png); the void and consumed-nonce pages
(backstage-safe-void-en.png, backstage-safe-nonce-en.png)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deposits.models import DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.transitions import deposit_payment_confirm
from minting.chain import role_id
from minting.models import SafeBatchExport
from minting.services.safe import safe_batch_file
from tests.browser.support import (
    DESKTOP,
    assert_layout,
    bank_create,
    deposit_status,
    screenshot,
    staff_session_cookie,
)
from tests.factories import (
    KycCaseFactory,
    WalletFactory,
    compliance_officer,
    customer,
    super_admin,
)


def _safe_lane_deposit() -> DepositRequest:
    bank_create(name="CRDB (ZenoPay settlement)", is_zenopay_settlement=True)
    amina = customer(email="amina@ntzs.test", phone="+255712345678")
    KycCaseFactory(user=amina, approved=True)
    wallet = WalletFactory(user=amina, verified=True)
    deposit, _created = deposit_create(
        user=amina,
        data=DepositInput(
            amount_tzs=12_000,
            payment_provider="zenopay",
            wallet_id=wallet.pk,
            buyer_phone="+255712345678",
        ),
    )
    deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=12_000, psp_reference="TXSAFE0001", source="poll"
    )
    assert deposit_status(deposit) == "mint_requires_safe"
    return deposit


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
def test_a_super_admin_downloads_the_batch_file_the_safe_executes_it_and_the_hash_mints(
    open_tab, site, chain_settings, local_safe, settings
):
    chain = chain_settings
    settings.NTZS_MINT_WITH_REF = None  # detected: the local token has deposit references
    settings.MINT_CONFIRMATIONS = 3
    chain.transact(
        chain.admin_key,
        chain.contract.functions.grantRole(role_id("MINTER_ROLE"), local_safe.address),
    )
    settings.SAFE_ADDRESS = local_safe.address
    deposit = _safe_lane_deposit()
    salim = super_admin()

    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(salim, site)])

    # The queue, from Backstage's home: select the deposit, preview its batch file.
    tab.goto(f"{site}/backstage/")
    tab.page.locator('a[href="/backstage/safe/"]').first.click()
    tab.page.wait_for_selector("#safe-queue")
    row = tab.page.locator(f'tr.safe-deposit[data-deposit="{deposit.pk}"]')
    assert "amina@ntzs.test" in row.inner_text() and "12,000" in row.inner_text()
    assert row.locator(".safe-exports").inner_text() == "0"
    screenshot(tab.page, "backstage-safe-queue-en")
    assert_layout(tab.page, "Backstage Safe queue")
    tab.page.check(f"#safe-select-{deposit.pk}")
    tab.page.get_by_role("button", name="Preview the batch file").click()

    # The preview: the exact call and the total; nothing exported yet.
    tab.page.wait_for_selector("#safe-export-summary")
    summary = tab.page.locator("#safe-export-summary").inner_text()
    assert "TSh 12,000" in summary and "mintForDeposit" in summary
    call = tab.page.locator(".safe-call").inner_text()
    assert deposit.wallet.address in call and str(12_000 * 10**18) in call
    assert SafeBatchExport.objects.count() == 0
    screenshot(tab.page, "backstage-safe-preview-en")
    assert_layout(tab.page, "Backstage Safe batch file preview")

    # The download: the export is recorded, the file is the Transaction Builder's.
    with tab.page.expect_download() as download_info:
        tab.page.get_by_role("button", name="Export and download the batch file").click()
    download = download_info.value
    batch = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    export = SafeBatchExport.objects.get()
    assert download.suggested_filename == f"ntzs-safe-mint-{export.pk}.json"
    assert batch == export.payload["batch"] and batch["chainId"] == "31337"

    # The exported payload could be voided from here (the call is shown; nothing is sent).
    tab.goto(f"{site}/backstage/safe/{deposit.pk}/void/")
    assert "is recorded" in tab.page.locator(".messagelist").inner_text()
    assert "voidDepositRef(bytes32)" in tab.page.locator(".safe-call").inner_text()
    screenshot(tab.page, "backstage-safe-void-en")
    assert_layout(tab.page, "Backstage Safe void page")

    # The local Safe executes the file's transaction.
    (tx,) = batch["transactions"]
    tx_hash = local_safe.exec_call(tx["to"], bytes.fromhex(tx["data"][2:]))
    assert chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1

    # The record form: awaiting confirmations, then minted once the blocks are mined.
    tab.goto(f"{site}/backstage/safe/")
    assert row.locator(".safe-exports").inner_text() == "1"
    row.get_by_role("link", name="Record tx hash").click()
    tab.page.wait_for_selector("#id_tx_hash")
    assert tab.page.input_value("#id_deposit_id") == str(deposit.pk)
    tab.page.fill("#id_tx_hash", tx_hash)
    tab.page.get_by_role("button", name="Check and record").click()
    tab.page.wait_for_selector("#safe-record-result .warning")
    assert "Awaiting confirmations" in tab.page.locator("#safe-record-result").inner_text()
    assert deposit_status(deposit) == "mint_requires_safe"

    chain.node.rpc("anvil_mine", hex(2))
    tab.page.get_by_role("button", name="Check and record").click()
    tab.page.wait_for_selector("#safe-record-result .success")
    result = tab.page.locator("#safe-record-result").inner_text()
    assert f"Minted: deposit {deposit.pk} is minted by Safe transaction {tx_hash}." in result
    screenshot(tab.page, "backstage-safe-record-en")
    assert_layout(tab.page, "Backstage Safe record form")

    minted = DepositRequest.objects.get(pk=deposit.pk)
    assert (minted.status, minted.mint_tx_hash) == ("minted", tx_hash)
    assert chain.contract.functions.balanceOf(minted.wallet.address).call() == 12_000 * 10**18
    assert tab.failed_requests == [] and tab.console_errors == []


def test_a_second_export_without_deposit_references_is_a_loud_danger_that_needs_a_tick(
    open_tab, site, chain_settings, settings
):
    settings.NTZS_MINT_WITH_REF = False  # the token already on Base Sepolia: plain mint only
    deposit = _safe_lane_deposit()
    safe_batch_file(deposit_ids=[deposit.pk], actor=compliance_officer(), safe_nonce=4)
    salim = super_admin()
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(salim, site)])

    tab.goto(f"{site}/backstage/safe/export/?deposit={deposit.pk}")
    danger = tab.page.locator("#safe-export-danger")
    assert "Danger: this export can mint twice." in danger.inner_text()
    assert "1 earlier export" in danger.inner_text()
    assert "no: the token has only mint" in tab.page.locator("#safe-export-refs").inner_text()
    screenshot(tab.page, "backstage-safe-preview-danger-en")
    assert_layout(tab.page, "Backstage Safe batch file preview, second export")

    tab.page.get_by_role("button", name="Export and download the batch file").click()
    # The export service refused it (under its lock); the form says so next to the box.
    tab.page.wait_for_selector("#safe-export-twice .errorlist")
    assert "tick the box" in tab.page.locator("#safe-export-twice").inner_text()
    assert SafeBatchExport.objects.count() == 1
    assert_layout(tab.page, "Backstage Safe batch file, could mint twice refused")

    tab.page.check("#id_acknowledge")
    with tab.page.expect_download() as download_info:
        tab.page.get_by_role("button", name="Export and download the batch file").click()
    batch = json.loads(Path(download_info.value.path()).read_text(encoding="utf-8"))
    assert batch["transactions"][0]["contractMethod"]["name"] == "mint"
    assert SafeBatchExport.objects.count() == 2

    # The consumed-nonce record is where such a payload is proven dead (four eyes).
    tab.goto(f"{site}/backstage/safe/")
    tab.page.get_by_role("link", name="Consumed Safe nonce").click()
    tab.page.wait_for_selector("#id_tx_hash")
    screenshot(tab.page, "backstage-safe-nonce-en")
    assert_layout(tab.page, "Backstage Safe consumed nonce page")
    assert tab.failed_requests == [] and tab.console_errors == []
