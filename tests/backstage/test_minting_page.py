"""The Backstage minting page: what mint_status prints, read from the database and the last
stored minter check, for compliance and super admins only."""

from __future__ import annotations

import datetime as dt

import pytest

from core.clock import now, today_utc
from minting.models import DailyIssuance, MintAttempt, MinterCheckRecord, SignerAccount

pytestmark = pytest.mark.django_db

MINTING = "/backstage/minting/"


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
    assert "TSh 7000" in body and "TSh 25000" in body
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
