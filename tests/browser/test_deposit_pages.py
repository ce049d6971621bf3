"""The other ways a deposit goes, in Chromium at 390 px: a payment declined on the phone, a bank
transfer's instructions, the Safe lane's wait page, and "check now" after paying; plus the
small things of issue 11 a customer meets on the way (Kiswahili login, the phone number's
length, the wallet page's clock). Each page is photographed
(var/screenshots/<test>-<lang>-NN-<step>.png) and layout-checked."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from backstage.demo import demo_users_ensure
from deposits.models import Bank, DepositRequest
from tests.browser.support import (
    MINTED,
    PHONE,
    WATCH_STATUS_JS,
    Journey,
    approve_on_the_phone,
    assert_layout,
    bank_create,
    deposit_status,
    run_queued_tasks,
    run_tasks_until,
    screenshot,
    settle_minting,
    squeezed,
    t,
)
from tests.factories import KycCaseFactory, WalletFactory, customer


@pytest.fixture
def banks(db):
    return {
        "settlement": bank_create(
            name="CRDB Bank",
            is_zenopay_settlement=True,
            account_name="nTZS Limited (ZenoPay)",
            account_number="0150 3381 2770 0",
        ),
        "nmb": bank_create(
            name="NMB Bank",
            account_name="nTZS Limited",
            account_number="2040 1234 567",
            transfer_instructions="Branch: Dar es Salaam, Samora Avenue",
        ),
    }


@pytest.fixture
def amina(site, banks):
    """A customer ready to deposit (KYC approved, wallet verified)."""
    person = customer(email="amina@ntzs.test", full_name="Amina Juma")
    KycCaseFactory(user=person, approved=True)
    WalletFactory(user=person, verified=True)
    return person


def _deposit_form(page, *, amount: str, provider: str = "zenopay", phone: str = "0712345678",
                  bank: str = "") -> None:  # fmt: skip
    page.goto("/deposits/new/")
    page.wait_for_load_state()
    page.locator("#id_amount_tzs").fill(amount)
    page.locator(f"input[name=payment_provider][value={provider}]").check()
    if provider == "zenopay":
        page.locator("input[name=buyer_phone]").fill(phone)
    else:
        page.locator("select[name=bank]").select_option(label=bank)
    page.locator("#deposit-form button[type=submit]").click()
    page.wait_for_load_state()


def _push_sent(page) -> None:
    """The worker sends the push; the customer opens the status page (the journey shows it
    changing by itself from "sending"; here the page starts at "check your phone")."""
    run_queued_tasks()
    page.reload()
    page.wait_for_selector('#deposit-status .deposit-status[data-stage="awaiting_payment"]')
    page.evaluate(WATCH_STATUS_JS)


def _latest(user) -> DepositRequest:
    return DepositRequest.objects.filter(user=user).latest("created_at")


@pytest.mark.parametrize("lang", ["sw"])
def test_a_declined_payment_shows_as_declined_by_itself_with_try_again(open_tab, amina, lang):
    tab = open_tab(lang=lang, user=amina)
    journey, page = Journey(tab, lang, "declined"), tab.page
    _deposit_form(page, amount="3000")
    deposit = _latest(amina)
    _push_sent(page)
    journey.step("waiting")

    approve_on_the_phone(open_tab, deposit.pk, action="Decline")
    from deposits.services.payments import payments_poll

    payments_poll(deposit_id=deposit.pk)  # the beat's poll: ZenoPay sends no failure webhook
    assert deposit_status(deposit) == "cancelled"
    page.wait_for_selector('#deposit-status .deposit-status[data-stage="failed"]', timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True, "the status page was reloaded"
    status = page.locator("#deposit-status")
    assert squeezed(status.locator(".status").first.inner_text()) == t(
        lang, "Declined on the phone"
    )
    assert status.get_by_role("link", name=t(lang, "Try again")).is_visible()
    assert status.locator("form[data-check-again]").count() == 0
    journey.step("declined")
    assert tab.failed_requests == [] and tab.console_errors == []


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_a_bank_transfer_shows_the_account_amount_and_reference_in_full(open_tab, site, lang):
    """With the banks and the customer `make dev` seeds (backstage.demo)."""
    demo_users_ensure()
    person = User.objects.get(email="customer@ntzs.local")
    nmb = Bank.objects.get(name="NMB Bank")
    tab = open_tab(lang=lang, user=person)
    journey, page = Journey(tab, lang, "bank"), tab.page
    page.goto("/deposits/new/")
    options = page.locator("select[name=bank] option").all_inner_texts()
    _deposit_form(page, amount="20000", provider="bank_transfer", bank="NMB Bank")
    deposit = _latest(person)
    assert deposit.payment_provider == "bank_transfer" and deposit.bank == nmb
    assert journey.heading() == t(lang, "Make your bank transfer")
    journey.step("instructions")
    facts = page.locator("main dl.facts").first
    values = [squeezed(value) for value in facts.locator("dd").all_inner_texts()]
    assert "NMB Bank" in values
    assert "TSh 20,000" in values
    assert deposit.transfer_reference in values
    for dd in facts.locator("dd").all():
        assert dd.bounding_box()["width"] >= 120, squeezed(dd.inner_text())

    # Issue 11, point 4 (content, helper C): the account's name and number are shown,
    # and the internal "(ZenoPay settlement)" label never reaches a customer.
    assert nmb.account_name and nmb.account_name in values
    assert nmb.account_number and nmb.account_number in values
    assert "settlement" not in squeezed(page.locator("body").inner_text()).lower()
    assert not any("settlement" in option.lower() for option in options), options
    assert tab.failed_requests == [] and tab.console_errors == []


def test_a_large_deposit_waits_in_the_safe_lane_and_says_so(open_tab, amina, settings):
    tab = open_tab(lang="en", user=amina)
    journey, page = Journey(tab, "en", "safe"), tab.page
    amount = settings.SAFE_MINT_THRESHOLD_TZS + 241_000
    _deposit_form(page, amount=str(amount))
    deposit = _latest(amina)
    page.evaluate(WATCH_STATUS_JS)
    run_queued_tasks()
    approve_on_the_phone(open_tab, deposit.pk)
    run_tasks_until(lambda: deposit_status(deposit) == "mint_requires_safe")
    # The Safe lane is polled every 15 s; the first poll comes 4 s after the page loaded.
    page.wait_for_selector('#deposit-status .deposit-status[data-stage="safe"]', timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True, "the status page was reloaded"
    status = page.locator("#deposit-status")
    assert squeezed(status.locator(".status").first.inner_text()) == t(
        "en", "Large deposit: awaiting multisig approval"
    )
    assert "multisig" in squeezed(status.inner_text())
    assert status.locator("a.button").count() == 0  # nothing to retry: the money is safe
    journey.step("safe")
    assert tab.failed_requests == [] and tab.console_errors == []


def test_check_now_is_offered_at_once_and_finds_the_payment(
    open_tab, amina, chain_settings, settings
):
    """Issue 11, point 4 (content, helper C): the button is there while the customer
    is asked for their PIN, worded for that moment; it used to appear only after 90 s."""
    settle_minting(settings)
    tab = open_tab(lang="en", user=amina)
    journey, page = Journey(tab, "en", "check-now"), tab.page
    _deposit_form(page, amount="5000")
    deposit = _latest(amina)
    _push_sent(page)
    button = page.locator("#deposit-status form[data-check-again] button")
    assert squeezed(button.inner_text()) == t("en", "I have entered my PIN — check now")
    journey.step("awaiting")

    # Paid, but the webhook is lost: the customer asks.
    approve_on_the_phone(open_tab, deposit.pk, action="Approve, drop the webhook")
    assert deposit_status(deposit) == "submitted"
    button.click()
    page.wait_for_selector("#deposit-status .notice[role=status]")
    run_tasks_until(lambda: deposit_status(deposit) == "minted")
    page.wait_for_selector(MINTED, timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True, "the status page was reloaded"
    journey.step("minted")
    assert tab.failed_requests == [] and tab.console_errors == []


# --- Small things on the way (issue 11, point 4: content fixed by helper C) -------------------


def test_the_kiswahili_login_page_speaks_kiswahili_and_so_does_its_error(open_tab, amina):
    tab = open_tab(lang="sw", size=PHONE)
    page = tab.page
    tab.goto("/login/")
    label = squeezed(page.locator("label[for=id_username]").inner_text())
    assert label.rstrip(":") == t("sw", "Email"), label
    assert label.rstrip(":") != "Email"
    page.locator("input[name=username]").fill(amina.email)
    page.locator("input[name=password]").fill("not-her-password")
    page.locator("main button[type=submit]").click()
    error = squeezed(page.locator(".errorlist").first.inner_text())
    assert "Barua pepe" in error and "email/" not in error.lower(), error
    screenshot(page, "login-error-sw-phone")
    assert_layout(page, "the Kiswahili login error")


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_a_sixteen_digit_phone_number_is_refused_as_too_long(open_tab, amina, lang):
    tab = open_tab(lang=lang, user=amina)
    _deposit_form(tab.page, amount="5000", phone="0712345678901234")
    error = squeezed(tab.page.locator("#deposit-form .errorlist").first.inner_text())
    expected = t(
        lang,
        "That number is too long: a Tanzanian mobile number has 10 digits, such as 0712 345 678.",
    )
    assert error == expected, error
    assert DepositRequest.objects.count() == 0
    screenshot(tab.page, f"deposit-phone-too-long-{lang}-phone")
    assert_layout(tab.page, f"the phone number error ({lang})")


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_the_wallet_page_gives_the_expiry_in_eat_and_the_message_says_both(open_tab, banks, lang):
    person = customer(email="juma@ntzs.test")
    wallet = WalletFactory(user=person)
    tab = open_tab(lang=lang, user=person)
    tab.goto(f"/wallets/{wallet.pk}/verify/")
    message = tab.page.locator("#wallet-message-text").inner_text()
    assert "UTC" in message and "EAT" in message, message
    page_text = squeezed(tab.page.locator("main").inner_text()).replace(squeezed(message), "")
    assert "EAT" in page_text and "UTC" not in page_text, page_text


def test_every_page_has_a_favicon(open_tab, site):
    tab = open_tab(lang="en")
    tab.goto("/login/")
    icon = tab.page.locator("link[rel=icon]").first.get_attribute("href")
    assert tab.page.request.get(icon).ok
    assert tab.page.request.get("/favicon.ico").ok  # what browsers ask for by themselves


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_dates_use_the_site_format_in_both_languages(open_tab, site, lang):
    """Dates read "2 Dec 2026, 10:34 EAT" (Kiswahili "2 Des 2026, …"), never Django's stock
    "Dis. 2, 2026, 5:48 a.m"."""
    from accounts.services import kyc_submit

    person = customer(email="juma@ntzs.test")
    kyc_submit(user=person, national_id="19900101123450000001", full_name="Juma Kassimu")
    tab = open_tab(lang=lang, user=person)
    tab.goto("/kyc/")
    submitted = squeezed(tab.page.locator("main .card .muted").first.inner_text())
    assert re.search(r"\b\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} EAT$", submitted), submitted
    assert not re.search(r"[ap]\.m|\w\.\s\d", submitted), submitted
