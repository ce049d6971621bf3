"""Retrying failed mints from Backstage, in a browser, on anvil.

The failures are real: the worker signs the batch, the recipient is blacklisted before the
signed bytes are sent, so the mint lands and reverts on chain and the deposit becomes
mint_failed with the proof (as tests/minting/test_recovery.py does); the blacklist is then
lifted. A compliance officer retries one from its page — minted exactly once, the balance on
chain says so, and a second retry changes nothing — and then several at once from the list,
where each row shows its own outcome, a retry that cannot be proven safe among them.
Screenshots: var/screenshots/backstage-retry-confirm-en.png (the confirmation page with the
last error), backstage-retry-minted-en.png (the deposit once minted) and
backstage-retry-bulk-en.png (the bulk retry's per-row outcomes)."""

from __future__ import annotations

import pytest

from core.crashpoints import SimulatedCrash
from deposits.models import DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.transitions import deposit_payment_confirm
from minting.models import MintAttempt, MintTransaction, SignerAccount
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process
from minting.services.runner import mint_client
from tests.browser.support import (
    DESKTOP,
    assert_layout,
    bank_create,
    deposit_status,
    run_queued_tasks,
    run_tasks_until,
    screenshot,
    settle_minting,
    staff_session_cookie,
)
from tests.factories import KycCaseFactory, WalletFactory, compliance_officer, customer

UNITS = 10**18
MINT_TASKS = ("minting.tasks.process_mint_jobs", "minting.tasks.confirm_mints")
CHANGELIST = "/backstage/deposits/depositrequest/"


def _officer_tab(open_tab, site):
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(compliance_officer(), site)])
    return tab


def _customer():
    bank_create(name="CRDB (ZenoPay settlement)", is_zenopay_settlement=True)
    amina = customer(email="amina@ntzs.test", phone="+255712345678")
    KycCaseFactory(user=amina, approved=True)
    amina.test_wallet = WalletFactory(user=amina, verified=True)
    return amina


def _paid(user, amount: int, reference: str) -> DepositRequest:
    deposit, _created = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider="zenopay",
            wallet_id=user.test_wallet.pk,
            buyer_phone="+255712345678",
        ),
    )
    deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=amount, psp_reference=reference, source="poll"
    )
    return deposit


def _reverted(chain, deposits, test_settings) -> None:
    """The deposits' signed batch lands after their recipient was blacklisted: it reverts on
    chain and the confirmer fails them with the proof; then the recipient is cleared."""
    wallet = deposits[0].wallet.address
    test_settings.CRASH_POINTS = {"after_commit_before_send"}
    with pytest.raises(SimulatedCrash):
        mint_jobs_process(client_factory=mint_client)
    test_settings.CRASH_POINTS = set()
    chain.transact(chain.admin_key, chain.contract.functions.blacklist(wallet))
    mints_confirm(client_factory=mint_client)  # sends the committed bytes: they revert
    mints_confirm(client_factory=mint_client)
    assert [deposit_status(d) for d in deposits] == ["mint_failed"] * len(deposits)
    chain.transact(chain.admin_key, chain.contract.functions.unblacklist(wallet))


def _balance(chain, address: str) -> int:
    return chain.contract.functions.balanceOf(address).call()


def _message(page) -> str:
    page.wait_for_selector(".messagelist li")
    return page.locator(".messagelist").inner_text()


def test_a_failed_mint_retried_from_its_page_is_minted_once(
    open_tab, site, chain_settings, settings
):
    settle_minting(settings)
    amina = _customer()
    deposit = _paid(amina, 5_000, "TXRETRY1")
    _reverted(chain_settings, [deposit], settings)
    wallet = deposit.wallet.address
    assert _balance(chain_settings, wallet) == 0
    detail = f"{site}/backstage/deposits/depositrequest/{deposit.pk}/change/"
    officer = _officer_tab(open_tab, site)

    # The confirmation page: what the retry does, and the last error; nothing changes yet.
    officer.goto(detail)
    officer.page.get_by_role("link", name="Retry the failed mint").click()
    officer.page.wait_for_selector(".deposit-action-explain")
    explain = officer.page.locator(".deposit-action-explain").inner_text()
    assert "Last error: reverted on chain" in explain
    assert deposit_status(deposit) == "mint_failed"
    screenshot(officer.page, "backstage-retry-confirm-en")
    assert_layout(officer.page, "Backstage retry confirmation page")

    officer.page.get_by_role("button", name="Retry the failed mint").click()
    assert "Retry: queued for minting." in _message(officer.page)
    assert deposit_status(deposit) == "mint_pending"

    run_tasks_until(lambda: deposit_status(deposit) == "minted", beat=MINT_TASKS)

    assert _balance(chain_settings, wallet) == 5_000 * UNITS
    assert chain_settings.contract.functions.totalSupply().call() == 5_000 * UNITS
    attempts = MintAttempt.objects.filter(mint_transaction__deposit=deposit)
    assert sorted(attempts.values_list("status", flat=True)) == ["mined_ok", "mined_reverted"]
    officer.goto(detail)
    assert officer.page.get_by_role("link", name="Retry the failed mint").count() == 0
    screenshot(officer.page, "backstage-retry-minted-en")
    assert_layout(officer.page, "Backstage minted deposit after a retry")

    # A second retry (the page opened by its address, the button pressed anyway) is told
    # there is nothing to do, and the chain agrees: nothing more was minted.
    officer.goto(f"{site}/backstage/deposits/depositrequest/{deposit.pk}/act/retry-mint/")
    officer.page.get_by_role("button", name="Retry the failed mint").click()
    assert "nothing to do" in _message(officer.page)
    run_queued_tasks()  # whatever the refused retry might have queued, and the worker's
    mint_jobs_process(client_factory=mint_client)  # own rounds, as beat would run them
    mints_confirm(client_factory=mint_client)
    assert _balance(chain_settings, wallet) == 5_000 * UNITS
    assert deposit_status(deposit) == "minted"
    assert officer.failed_requests == [] and officer.console_errors == []


def test_a_bulk_retry_shows_each_rows_outcome(open_tab, site, chain_settings, settings):
    settle_minting(settings)
    amina = _customer()
    provable = [_paid(amina, 5_000, "TXBULK1"), _paid(amina, 6_000, "TXBULK2")]
    _reverted(chain_settings, provable, settings)
    # A third failed mint whose attempt's nonce the chain has not mined: its retry cannot be
    # proven safe, so that row is refused while the others go on.
    unprovable = _paid(amina, 7_000, "TXBULK3")
    mint = MintTransaction.objects.create(
        deposit=unprovable,
        chain_id=31337,
        contract_address=chain_settings.address,
        to_address=unprovable.wallet.address,
        amount_units=7_000 * UNITS,
        status=MintTransaction.Status.FAILED,
        error="execution reverted",
    )
    DepositRequest.objects.filter(pk=unprovable.pk).update(status="mint_failed")
    MintAttempt.objects.create(
        mint_transaction=mint,
        signer=SignerAccount.objects.create(address="0x" + "cd" * 20, chain_id=31337),
        nonce=10**9,
        tx_hash="0x" + "ef" * 32,
        raw_tx="0x00",
        max_fee_per_gas=1,
        max_priority_fee_per_gas=1,
        gas_limit=100_000,
        status=MintAttempt.Status.REJECTED,
    )
    wallet = amina.test_wallet.address
    officer = _officer_tab(open_tab, site)

    # The list of failed mints, all selected, the bulk action's confirmation page.
    officer.goto(f"{site}{CHANGELIST}?status__exact=mint_failed")
    assert officer.page.locator("#result_list tbody tr").count() == 3
    officer.page.check("#action-toggle")
    officer.page.select_option("select[name=action]", "retry_failed_mints")
    officer.page.get_by_role("button", name="Go").click()
    officer.page.wait_for_selector(".deposit-bulk-explain")
    assert all(deposit_status(d) == "mint_failed" for d in [*provable, unprovable])

    officer.page.get_by_role("button", name="Retry these mints").click()
    officer.page.wait_for_selector("#bulk-results")
    screenshot(officer.page, "backstage-retry-bulk-en")
    assert_layout(officer.page, "Backstage bulk retry results")
    rows = officer.page.locator("#bulk-results tbody tr")
    outcomes = {
        rows.nth(i).locator("td").first.inner_text(): rows.nth(i).inner_text()
        for i in range(rows.count())
    }
    assert set(outcomes) == {str(d.pk) for d in [*provable, unprovable]}
    for deposit in provable:
        assert "queued for minting" in outcomes[str(deposit.pk)]
    assert (
        "cannot be retried: an earlier transaction can still land" in outcomes[str(unprovable.pk)]
    )
    assert officer.page.locator("#bulk-results tr.bulk-refused").count() == 1

    run_tasks_until(lambda: all(deposit_status(d) == "minted" for d in provable), beat=MINT_TASKS)

    assert _balance(chain_settings, wallet) == 11_000 * UNITS
    assert deposit_status(unprovable) == "mint_failed"
    assert officer.failed_requests == [] and officer.console_errors == []
