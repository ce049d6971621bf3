"""Every customer page, in English and Kiswahili, on a phone (390 × 844) and on a desktop
(1280 wide): a screenshot of each under var/screenshots/<page>-<lang>-<phone|desktop>.png,
and the layout check (tests/browser/support.py) on each: nothing wider than the viewport, no
value column under 120 px, no amount or reference broken across lines."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.services import kyc_submit
from accounts.services.signup import user_sign_up_request
from tests.browser.support import (
    LANGUAGES,
    PHONE,
    WIDTHS,
    bank_create,
    deposit_bank,
    deposit_zenopay,
    layout_problems,
    same_line,
    screenshot,
    squeezed,
)
from tests.factories import KycCaseFactory, WalletFactory, customer


@pytest.fixture
def world(site, chain_settings, settings):
    """People and deposits for every page: a newcomer, someone under review, and Amina with a
    deposit in each state a customer sees."""
    settings.MINT_CONFIRMATIONS = 1
    settings.NTZS_MINT_WITH_REF = None
    bank_create(
        name="CRDB Bank",
        is_zenopay_settlement=True,
        account_name="nTZS Limited (ZenoPay)",
        account_number="0150 3381 2770 0",
    )
    nmb = bank_create(
        name="NMB Bank",
        account_name="nTZS Limited",
        account_number="2040 1234 567",
        transfer_instructions="Branch: Dar es Salaam, Samora Avenue",
    )
    newcomer = customer(email="neema@ntzs.test", full_name="Neema Mwakyusa")
    reviewed = customer(email="juma@ntzs.test", full_name="Juma Kassimu Mwinyimkuu")
    kyc_submit(
        user=reviewed, national_id="19900101123450000001", full_name="Juma Kassimu Mwinyimkuu"
    )
    unverified = WalletFactory(user=reviewed)
    amina = customer(email="amina@ntzs.test", full_name="Amina Juma Mohamedi")
    KycCaseFactory(user=amina, approved=True)
    wallet = WalletFactory(user=amina, verified=True)
    minted = deposit_zenopay(user=amina, wallet=wallet, amount=5_000, outcome="approve")
    assert minted.status == "minted", minted.status
    safe = deposit_zenopay(
        user=amina, wallet=wallet, amount=settings.SAFE_MINT_THRESHOLD_TZS + 241_000,
        outcome="approve",
    )  # fmt: skip
    assert safe.status == "mint_requires_safe", safe.status
    declined = deposit_zenopay(user=amina, wallet=wallet, amount=3_000, outcome="decline")
    assert declined.status == "cancelled", declined.status
    waiting = deposit_zenopay(user=amina, wallet=wallet, amount=20_000)
    bank = deposit_bank(user=amina, wallet=wallet, bank=nmb, amount=1_000_000)
    return {
        "newcomer": newcomer,
        "reviewed": reviewed,
        "unverified": unverified,
        "amina": amina,
        "minted": minted,
        "safe": safe,
        "declined": declined,
        "waiting": waiting,
        "bank": bank,
    }


def _signup_link(email: str) -> str:
    mail.outbox.clear()
    user_sign_up_request(email=email, full_name="Rehema Said")
    return re.search(r"https?://\S+/signup/confirm/\S+/", mail.outbox[-1].body).group(0)


def _pages(world) -> list[tuple[str, str | None, str]]:
    """(name, who, path) of every customer page; who is a key of ``world`` or None."""
    reset_user = world["newcomer"]
    uid = urlsafe_base64_encode(force_bytes(reset_user.pk))
    token = default_token_generator.make_token(reset_user)
    signup = _signup_link("rehema@ntzs.test")
    d = {key: world[key].pk for key in ("minted", "safe", "declined", "waiting", "bank")}
    return [
        ("login", None, "/login/"),
        ("signup", None, "/signup/"),
        ("signup-sent", None, "/signup/sent/"),
        ("signup-confirm", None, urlsplit(signup).path),
        ("password-reset", None, "/password-reset/"),
        ("password-reset-sent", None, "/password-reset/sent/"),
        ("password-reset-confirm", None, f"/password-reset/{uid}/{token}/"),
        ("password-reset-done", None, "/password-reset/done/"),
        ("home-newcomer", "newcomer", "/"),
        ("kyc-form", "newcomer", "/kyc/"),
        ("wallet-register", "newcomer", "/wallets/"),
        ("home-under-review", "reviewed", "/"),
        ("kyc-under-review", "reviewed", "/kyc/"),
        ("wallet-verify", "reviewed", f"/wallets/{world['unverified'].pk}/verify/"),
        ("home-ready", "amina", "/"),
        ("deposit-new", "amina", "/deposits/new/"),
        ("deposit-waiting", "amina", f"/deposits/{d['waiting']}/"),
        ("deposit-declined", "amina", f"/deposits/{d['declined']}/"),
        ("deposit-safe", "amina", f"/deposits/{d['safe']}/"),
        ("deposit-minted", "amina", f"/deposits/{d['minted']}/"),
        ("bank-transfer", "amina", f"/deposits/{d['bank']}/"),
        ("history", "amina", "/deposits/"),
        ("receipt-minted", "amina", f"/deposits/{d['minted']}/receipt/"),
        ("receipt-bank", "amina", f"/deposits/{d['bank']}/receipt/"),
        ("receipt-declined", "amina", f"/deposits/{d['declined']}/receipt/"),
    ]


LOGOUT = "header form.logout button"
ONE_LINE_JS = """
el => { const range = document.createRange(); range.selectNodeContents(el);
  return new Set(Array.from(range.getClientRects()).filter(r => r.width > 0.5)
    .map(r => Math.round(r.top))).size; }
"""


def _header_problems(page) -> list[str]:
    """A signed-in page: "Log out" ("Toka") on the brand's line, the header not a tower."""
    if not page.locator(LOGOUT).count():
        return ["no Log out button in the header"]
    problems = []
    if not same_line(page, "header .brand", LOGOUT):
        problems.append("Log out dropped below the header line")
    height = page.locator("header").bounding_box()["height"]
    if height > 140:
        problems.append(f"the header is {height:.0f} px tall")
    return problems


def _receipt_problems(page) -> list[str]:
    """The receipt's amount and status pill each on one line (the Kiswahili receipt wrapped
    "TSh 5,00 / 0" and broke the pill)."""
    problems = []
    for selector in (".receipt .amount", ".receipt .status"):
        box = page.locator(selector).first
        lines = box.evaluate(ONE_LINE_JS)
        if lines != 1:
            problems.append(f"{selector} ({squeezed(box.inner_text())}) spans {lines} lines")
    return problems


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_customer_page_fits_a_phone_and_a_desktop(open_tab, world, lang):
    """One tab per person; every page at both widths: a screenshot, then the layout check,
    the header's line on signed-in pages and the receipt's one-line amount and pill. All
    problems are gathered before failing, so one run shows them all."""
    problems, tabs = [], {}
    for name, who, path in _pages(world):
        if who not in tabs:
            tabs[who] = open_tab(lang=lang, size=PHONE, user=world[who] if who else None)
        tab = tabs[who]
        for width, size in WIDTHS.items():
            tab.page.set_viewport_size(size)
            tab.goto(path)
            shot = f"{name}-{lang}-{width}"
            screenshot(tab.page, shot)
            found = layout_problems(tab.page)
            if who:
                found += _header_problems(tab.page)
            if name.startswith("receipt"):
                found += _receipt_problems(tab.page)
            problems += [f"{shot}: {problem}" for problem in found]
    assert not problems, "\n".join(problems)
    for tab in tabs.values():
        assert tab.failed_requests == [], tab.failed_requests
        assert tab.console_errors == [], tab.console_errors
