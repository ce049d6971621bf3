"""The customer's journey in Chromium on a 390 × 844 phone, in English and in Kiswahili: sign up
through the e-mailed link, KYC (approved by a compliance officer with the kyc_review command),
a wallet verified by a pasted signature, a 5,000 TSh mobile money deposit approved on the
sandbox phone, the status page reaching "minted" by itself, the history and the receipt.

The worker is this test thread (tests/browser/support.py, ``run_tasks_until``): it runs what
the pages and the sandbox enqueued while the status page polls on its own; the page is never
reloaded (a marker set in its window at load must still be there at the end). Every step is
photographed (var/screenshots/journey-<lang>-NN-<step>.png) and layout-checked."""

from __future__ import annotations

import json
import re

import pytest
from django.core import mail
from django.core.management import call_command
from eth_account import Account
from eth_account.messages import encode_defunct

from accounts.models import KycCase, User
from deposits.models import DepositRequest
from tests.browser.support import (
    LANGUAGES,
    MINTED,
    WATCH_STATUS_JS,
    Journey,
    approve_on_the_phone,
    bank_create,
    deposit_status,
    initiated,
    run_tasks_until,
    settle_minting,
    squeezed,
    t,
)
from tests.factories import compliance_officer, wallet_key

PASSWORD = "Mwanza-ferry-1979-kahawa"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_new_customer_signs_up_verifies_and_sees_the_deposit_minted(
    open_tab, site, chain_settings, settings, lang
):
    settle_minting(settings)
    bank_create(name="CRDB Bank", is_zenopay_settlement=True)
    officer = compliance_officer(email="neema.compliance@ntzs.test")
    tab = open_tab(lang="en")
    journey, page = Journey(tab, lang), tab.page
    email = f"amina.{lang}@ntzs.test"

    # Sign up, choosing the language with the footer's picker first.
    tab.goto("/signup/")
    if lang != "en":
        page.locator("footer select[name=language]").select_option(lang)
        page.locator("footer button[type=submit]").click()
        page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == lang
    journey.step("signup")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=full_name]").fill("Amina Juma")
    page.locator("main button[type=submit]").click()
    assert journey.heading() == t(lang, "Check your e-mail")
    journey.step("signup-sent")

    # The e-mailed link: choose a password; the account is created and logged in.
    link = re.search(r"https?://\S+/signup/confirm/\S+/", mail.outbox[-1].body).group(0)
    tab.goto(link)
    journey.step("signup-confirm")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password_confirm]").fill(PASSWORD)
    page.locator("main button[type=submit]").click()
    assert page.url.rstrip("/") == site.rstrip("/")
    journey.step("home-new")

    # KYC, approved by a compliance officer (the command, until Backstage does it).
    page.locator("#step-kyc a.button").click()
    page.locator("input[name=national_id]").fill("19900101123450000001")
    page.locator("input[name=full_name]").fill("Amina Juma")
    page.locator("main button[type=submit]").click()
    assert t(lang, "Under review") in journey.text()
    journey.step("kyc-submitted")
    case = KycCase.objects.get(user__email=email)
    call_command("kyc_review", str(case.pk), "--approve", "--actor", officer.email)
    tab.goto("/")
    assert page.locator("#step-kyc .status.ok").inner_text() == t(lang, "Approved")

    # A wallet, verified by a signature made elsewhere and pasted.
    key = wallet_key(f"journey-{lang}")
    page.locator("#step-wallet a.button").click()
    page.locator("input[name=address]").fill(key.address)
    page.locator("main button[type=submit]").click()
    assert journey.heading() == t(lang, "Verify your wallet")
    journey.step("wallet-verify")
    message = json.loads(page.locator("#wallet-message").text_content())
    signed = Account.sign_message(encode_defunct(text=message), key.key)
    page.locator("textarea[name=signature]").fill("0x" + bytes(signed.signature).hex())
    page.locator("#wallet-verify-form button[type=submit]").click()
    assert page.locator("#step-wallet .status.ok").first.inner_text() == t(lang, "Verified")
    journey.step("home-ready")

    # A 5,000 TSh deposit by mobile money.
    page.locator("main a.button[href='/deposits/new/']").first.click()
    page.wait_for_load_state()  # deposits.js (deferred) groups the digits
    page.locator("#id_amount_tzs").press_sequentially("5000")
    assert page.locator("#id_amount_tzs").input_value() == "5,000"  # grouped as typed
    page.locator("input[name=payment_provider][value=zenopay]").check()
    page.locator("input[name=buyer_phone]").fill("0712 345 678")
    journey.step("deposit-new")
    page.locator("#deposit-form button[type=submit]").click()
    deposit = DepositRequest.objects.get(user__email=email)
    assert page.url.endswith(f"/deposits/{deposit.pk}/")
    assert journey.heading() == t(lang, "Check your phone")
    page.evaluate(WATCH_STATUS_JS)

    # The worker sends the push; the page notices by itself.
    run_tasks_until(lambda: deposit_status(deposit) == "submitted" and initiated(deposit))
    page.wait_for_selector('#deposit-status .deposit-status[data-stage="awaiting_payment"]')
    journey.step("check-your-phone")

    # Approved on the phone; the worker takes it from the webhook to the mint.
    approve_on_the_phone(open_tab, deposit.pk)
    run_tasks_until(lambda: deposit_status(deposit) == "minted")
    page.wait_for_selector(MINTED, timeout=15_000)
    page.wait_for_selector("#deposit-status .steps li[data-step='4'].done", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True, "the status page was reloaded"
    status = page.locator("#deposit-status")
    assert squeezed(status.locator(".status").first.inner_text()) == t(lang, "Minted")
    deposit.refresh_from_db()
    assert deposit.mint_tx_hash and deposit.mint_tx_hash in squeezed(status.inner_text())
    journey.step("minted")

    # Issue 11, points 4 and 5 (content, helper C): the heading follows the live update; on
    # chain 31337 the hash is not linked to Base Sepolia's explorer; the stages passed while
    # the page caught up are each shown, with their times.
    assert journey.heading() == t(lang, "Your deposit")
    assert page.locator("a[href*='basescan']").count() == 0
    assert status.locator(f"a:has-text('{deposit.mint_tx_hash}')").count() == 0
    assert {2, 3} <= set(page.evaluate("window.__stepsShown")), page.evaluate("window.__stepsShown")
    assert status.locator(".steps li .step-time").count() == 4

    # History and receipt.
    page.locator("main a[href='/deposits/']").first.click()
    assert journey.heading() == t(lang, "Your deposits")
    row = page.locator("ul.deposits li").first
    assert "TSh 5,000" in squeezed(row.inner_text())
    assert squeezed(row.locator(".status").inner_text()) == t(lang, "Minted")
    journey.step("history")
    row.locator(f"a[href='/deposits/{deposit.pk}/receipt/']").click()
    receipt = page.locator(".receipt")
    assert squeezed(receipt.locator(".amount").inner_text()) == "TSh 5,000"
    assert squeezed(receipt.locator(".status").inner_text()) == t(lang, "Minted")
    assert str(deposit.pk) in receipt.inner_text()
    assert deposit.psp_reference in receipt.inner_text()
    journey.step("receipt")

    # Nothing failed on the way: no missing file (the favicon included), no CSP refusal.
    assert tab.failed_requests == [], tab.failed_requests
    assert tab.console_errors == [], tab.console_errors
    assert User.objects.get(email=email).full_name == "Amina Juma"
