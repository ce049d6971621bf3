"""The minter key rotation page in a browser: a rotation under way, its steps and checks laid
out under the site's Content-Security-Policy, only the current step's action offered.
Screenshot: var/screenshots/backstage-key-rotation.png."""

from __future__ import annotations

from minting.models import MintAttempt, SignerAccount
from minting.services.rotation import key_rotation_begin, key_rotation_stop
from tests.browser.support import DESKTOP, assert_layout, screenshot, staff_session_cookie
from tests.factories import super_admin
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS


def test_a_super_admin_follows_a_rotation_step_by_step(open_tab, site, settings, chain_settings):
    settings.MINTER_PRIVATE_KEY = DEV_PRIVATE_KEYS[1]
    salim = super_admin()
    old = SignerAccount.objects.create(address=DEV_ADDRESSES[1], chain_id=31337, next_nonce=8)
    key_rotation_begin(new_address=DEV_ADDRESSES[4], actor=salim, reason="yearly rotation")
    key_rotation_stop(actor=salim, reason="rotating to a new key")
    MintAttempt.objects.create(
        signer=old,
        nonce=7,
        tx_hash="0x" + "7a" * 32,
        raw_tx="0x00",
        max_fee_per_gas=4 * 10**9,
        max_priority_fee_per_gas=10**9,
        gas_limit=120_000,
        status=MintAttempt.Status.SENT,
    )
    tab = open_tab(size=DESKTOP)
    tab.page.context.add_cookies([staff_session_cookie(salim, site)])
    tab.goto(f"{site}/backstage/minting/key-rotation/")
    screenshot(tab.page, "backstage-key-rotation")
    assert_layout(tab.page, "Backstage key rotation page")
    assert "done" in tab.page.locator("#step-stop .step-state").inner_text()
    assert "0x" + "7a" * 32 in tab.page.locator("#step-drain").inner_text()
    for key in DEV_PRIVATE_KEYS[1], DEV_PRIVATE_KEYS[4]:
        assert key[2:] not in tab.page.content()
    assert tab.failed_requests == [] and tab.console_errors == []
