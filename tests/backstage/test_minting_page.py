"""The Backstage minting page: what mint_status prints, read from the database and the last
stored minter check, for compliance and super admins only."""

from __future__ import annotations

import datetime as dt

import pytest

from core.clock import now, today_utc
from core.models import AdminAction
from minting.chain import account_address
from minting.models import DailyIssuance, MintAttempt, MinterCheckRecord, SignerAccount
from tests.support.anvil import DEV_PRIVATE_KEYS

pytestmark = pytest.mark.django_db

MINTING = "/backstage/minting/"


@pytest.fixture(autouse=True)
def _minter_key(settings):
    settings.MINTER_PRIVATE_KEY = DEV_PRIVATE_KEYS[1]  # the chain fixtures' minter too


def _mined_attempt(*, signer, nonce: int, gas_used: int, price: int, l1_fee: int):
    return MintAttempt.objects.create(
        signer=signer,
        nonce=nonce,
        tx_hash=f"0x{nonce:064x}",
        raw_tx="0x00",
        max_fee_per_gas=price * 4,
        max_priority_fee_per_gas=1,
        gas_limit=120_000,
        status=MintAttempt.Status.MINED_OK,
        gas_used=gas_used,
        effective_gas_price=price,
        l1_fee=l1_fee,
        mined_on=today_utc(),
    )


def test_the_page_shows_the_cap_the_minter_and_the_days_cost_of_minting(login, neema):
    DailyIssuance.objects.create(day=today_utc(), reserved_tzs=7_000, issued_tzs=25_000)
    signer = SignerAccount.objects.create(
        address="0x" + "ab" * 20, chain_id=31337, next_nonce=12, last_mined_nonce=10
    )
    _mined_attempt(signer=signer, nonce=10, gas_used=100_000, price=2 * 10**9, l1_fee=10**12)
    _mined_attempt(signer=signer, nonce=11, gas_used=100_000, price=2 * 10**9, l1_fee=10**12)
    MinterCheckRecord.objects.create(
        name="minter",
        checked_at=now() - dt.timedelta(minutes=2),
        reachable=True,
        has_minter_role=True,
        gas_balance_wei=5 * 10**17,
        paused=False,
    )

    page = login(neema).get(MINTING)

    assert page.status_code == 200
    body = page.content.decode()
    assert "TSh 7,000" in body and "TSh 25,000" in body
    assert "0x" + "ab" * 20 in body
    assert "12 / 10" in body
    # 2 x (100,000 gas x 2 gwei) + 2 x 0.000001 ETH of L1 fee = 0.000402 ETH
    assert "0.000402 ETH" in body
    assert "500000000000000000" in body  # the stored check's gas balance, not a chain read


def test_the_page_answers_with_no_minter_check_and_no_signer_yet(login, salim):
    page = login(salim).get(MINTING)

    assert page.status_code == 200
    assert "has not been checked yet" in page.content.decode()


def test_the_index_links_the_minting_page_for_those_who_may_see_it(login, neema):
    assert f'href="{MINTING}"' in login(neema).get("/backstage/").content.decode()


def test_a_bank_admin_and_a_roleless_superuser_are_refused(
    client, staff_otp_login, nmb_admin, root
):
    staff_otp_login(client, nmb_admin)
    assert client.get(MINTING).status_code == 403
    assert f'href="{MINTING}"' not in client.get("/backstage/").content.decode()
    client.logout()
    staff_otp_login(client, root)
    assert client.get(MINTING).status_code == 403


# --- Actions: the services' own rules, through the page's POSTs --------------------------------


def _signer(**fields) -> SignerAccount:
    address = account_address(DEV_PRIVATE_KEYS[1])
    return SignerAccount.objects.create(address=address, chain_id=31337, **fields)


def test_a_super_admin_stops_and_starts_minting_keeping_the_ledger(login, salim):
    signer = _signer(next_nonce=4, last_mined_nonce=4)
    client = login(salim)

    stopped = client.post(f"{MINTING}stop/", {"stop-reason": "key rotation"}, follow=True)
    signer.refresh_from_db()
    assert not signer.sending_enabled and signer.disabled_reason == "key rotation"
    assert "Minting is stopped" in stopped.content.decode()

    client.post(f"{MINTING}start/", {"start-reason": "rotated", "start-keep_ledger": "on"})
    signer.refresh_from_db()
    assert signer.sending_enabled and signer.next_nonce == 4
    assert list(
        AdminAction.objects.filter(actor=salim).order_by("at").values_list("action", flat=True)
    ) == ["mint.stop", "mint.start"]


def test_a_resyncing_start_is_refused_in_the_services_words_while_mints_are_in_flight(
    login, salim, chain_settings
):
    signer = _signer(next_nonce=3, last_mined_nonce=2, sending_enabled=False)
    MintAttempt.objects.create(
        signer=signer,
        nonce=2,
        tx_hash="0x" + "12" * 32,
        raw_tx="0x00",
        max_fee_per_gas=4,
        max_priority_fee_per_gas=1,
        gas_limit=120_000,
    )

    page = login(salim).post(
        f"{MINTING}start/", {"start-reason": "after the incident"}, follow=True
    )

    signer.refresh_from_db()
    assert not signer.sending_enabled and signer.next_nonce == 3
    assert "still in flight (nonces 2)" in page.content.decode()


def test_a_super_admin_overrides_todays_cap_with_a_reason(login, salim):
    client = login(salim)

    refused = client.post(f"{MINTING}cap/", {"cap-cap_tzs": "250000000"}, follow=True)
    assert DailyIssuance.objects.filter(cap_override_tzs__isnull=False).count() == 0
    assert "This field is required" in refused.content.decode()

    client.post(f"{MINTING}cap/", {"cap-cap_tzs": "250000000", "cap-reason": "board approval"})
    issuance = DailyIssuance.objects.get(day=today_utc())
    assert issuance.cap_override_tzs == 250_000_000
    assert issuance.cap_override_reason == "board approval"


def test_a_compliance_officer_sees_no_action_and_the_service_refuses_a_forged_post(login, neema):
    signer = _signer(next_nonce=1, last_mined_nonce=1)
    client = login(neema)

    assert f'action="{MINTING}stop/"' not in client.get(MINTING).content.decode()
    page = client.post(f"{MINTING}stop/", {"stop-reason": "just because"}, follow=True)

    signer.refresh_from_db()
    assert signer.sending_enabled
    assert "may not stop or start minting" in page.content.decode()


def test_the_attempts_list_shows_nonce_fees_cost_and_the_explorer_link(login, neema, settings):
    settings.EXPLORER_URL = "https://sepolia.basescan.org"
    signer = SignerAccount.objects.create(address="0x" + "cd" * 20, chain_id=31337)
    MintAttempt.objects.create(
        signer=signer,
        nonce=7,
        tx_hash="0x" + "7e" * 32,
        raw_tx="0x00",
        max_fee_per_gas=2_500_000_000,
        max_priority_fee_per_gas=1,
        gas_limit=100_000,
        gas_used=50_000,
        effective_gas_price=1_000_000_000,
        l1_fee=25_000_000_000_000,
        status=MintAttempt.Status.MINED_OK,
    )
    page = login(neema).get("/backstage/minting/mintattempt/").content.decode()
    assert f'href="https://sepolia.basescan.org/tx/0x{"7e" * 32}"' in page
    assert "2.5 gwei" in page
    assert "0.000075 ETH" in page  # 50,000 gas x 1 gwei + 0.000025 ETH of L1 fee
    assert ">7<" in page
