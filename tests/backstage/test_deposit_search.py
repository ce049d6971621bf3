"""The deposit list's search recognises what was typed and matches it exactly, by index (a
million deposits: bench/backstage_bench.py): an id, a mint hash, an e-mail or its
beginning, a phone in any usual form, a PSP, bank or transfer reference. A bank admin's
search never finds another bank's deposit. The list counts a bounded number of rows."""

from __future__ import annotations

import pytest

from accounts.models import User
from backstage.admin.deposits import BoundedCountPaginator
from deposits.models import DepositRequest
from deposits.services.bank import deposit_bank_approve
from minting.models import MintAttempt, MintTransaction, SignerAccount
from tests.backstage.conftest import transfer

pytestmark = pytest.mark.django_db

CHANGELIST = "/backstage/deposits/depositrequest/"
MINT_HASH = "0x" + "ab" * 32
LOST_ATTEMPT_HASH = "0x" + "cd" * 32


def _found(client, term: str) -> str:
    page = client.get(CHANGELIST, {"q": term})
    assert page.status_code == 200
    return page.content.decode()


def listed(deposit) -> str:
    """A result row's link (the term itself is echoed in the search box and the URLs)."""
    return f"{CHANGELIST}{deposit.pk}/change/"


@pytest.fixture
def two(amina, juma, nmb):
    """Amina's deposit (the one searched for) and Juma's (never in the answer)."""
    User.objects.filter(pk=juma.pk).update(phone="+255655000999")
    wanted = transfer(amina, nmb, amount=5_000)
    other = transfer(juma, nmb, amount=6_000)
    return wanted, other


def test_a_deposit_id_finds_that_deposit_only(login, neema, two):
    wanted, other = two

    body = _found(login(neema), f"  {wanted.pk}  ")

    assert listed(wanted) in body and listed(other) not in body


@pytest.mark.parametrize("typed", [MINT_HASH, MINT_HASH.upper().replace("0X", "0x")])
def test_the_mint_hash_finds_the_deposit_in_either_case(login, neema, two, typed):
    wanted, other = two
    DepositRequest.objects.filter(pk=wanted.pk).update(mint_tx_hash=MINT_HASH)

    body = _found(login(neema), typed)

    assert listed(wanted) in body and listed(other) not in body


def test_the_hash_of_an_attempt_that_lost_finds_its_deposit(login, neema, amina, two):
    wanted, other = two
    mint = MintTransaction.objects.create(
        deposit=wanted,
        chain_id=31337,
        contract_address="0x" + "11" * 20,
        to_address=amina.test_wallet.address,
        amount_units=5_000 * 10**18,
    )
    MintAttempt.objects.create(
        mint_transaction=mint,
        signer=SignerAccount.objects.create(address="0x" + "ee" * 20, chain_id=31337),
        nonce=3,
        tx_hash=LOST_ATTEMPT_HASH,
        raw_tx="0x00",
        max_fee_per_gas=1,
        max_priority_fee_per_gas=1,
        gas_limit=100_000,
        status=MintAttempt.Status.REPLACED,
    )

    body = _found(login(neema), LOST_ATTEMPT_HASH)

    assert listed(wanted) in body and listed(other) not in body


@pytest.mark.parametrize("typed", ["amina@ntzs.test", "AMINA@ntzs.test", "amina@", "amin"])
def test_an_email_or_its_beginning_finds_the_customers_deposits(login, neema, two, typed):
    wanted, other = two

    body = _found(login(neema), typed)

    assert listed(wanted) in body and listed(other) not in body


@pytest.mark.parametrize(
    "typed", ["0787000111", "+255 787 000 111", "255787000111", "787000111", "0787-000-111"]
)
def test_a_paying_phone_in_any_usual_form_finds_the_deposit(login, neema, two, typed):
    wanted, other = two
    DepositRequest.objects.filter(pk=wanted.pk).update(buyer_phone="+255787000111")

    body = _found(login(neema), typed)

    assert listed(wanted) in body and listed(other) not in body


def test_the_customers_own_phone_finds_their_bank_transfers(login, neema, two):
    wanted, other = two  # a bank transfer has no paying phone; Amina's account has one

    body = _found(login(neema), "0712 345 678")

    assert wanted.buyer_phone == ""
    assert listed(wanted) in body and listed(other) not in body


@pytest.mark.parametrize("typed", ["ZP-778899", "zp-778899"])
def test_a_psp_reference_finds_the_deposit(login, neema, two, typed):
    wanted, other = two
    DepositRequest.objects.filter(pk=wanted.pk).update(psp_reference="ZP-778899")

    body = _found(login(neema), typed)

    assert listed(wanted) in body and listed(other) not in body


def test_a_banks_reference_finds_the_deposit_before_its_payment_is_confirmed(
    login, neema, nmb_admin, two
):
    wanted, other = two
    deposit_bank_approve(
        deposit_id=wanted.pk,
        actor=nmb_admin,
        bank_reference="NMB-TT-5521",
        amount_received_tzs=5_000,
    )

    body = _found(login(neema), "NMB-TT-5521")

    wanted.refresh_from_db()
    assert wanted.psp_reference == ""  # only on the bank's approval so far
    assert listed(wanted) in body and listed(other) not in body


def test_the_transfer_reference_finds_the_deposit_as_typed_in_lower_case(login, neema, two):
    wanted, other = two

    body = _found(login(neema), wanted.transfer_reference.lower())

    assert listed(wanted) in body and listed(other) not in body


@pytest.mark.parametrize("typed", ["MINT_PART", "Amina Juma", "x"])
def test_a_part_of_a_reference_or_a_phrase_finds_nothing(login, neema, two, typed):
    wanted, other = two
    DepositRequest.objects.filter(pk=wanted.pk).update(psp_reference="ZP-MINT_PART-1")

    body = _found(login(neema), typed)

    assert listed(wanted) not in body and listed(other) not in body


def test_a_bank_admins_search_never_finds_another_banks_deposit(
    login, nmb_admin, amina, juma, nmb, exim
):
    own = transfer(amina, nmb)
    foreign = transfer(juma, exim)
    DepositRequest.objects.filter(pk=foreign.pk).update(
        psp_reference="EXIM-REF-1", mint_tx_hash=MINT_HASH, buyer_phone="+255787000222"
    )
    client = login(nmb_admin)

    for term in (
        str(foreign.pk),
        "EXIM-REF-1",
        MINT_HASH,
        "0787000222",
        "juma@ntzs.test",
        foreign.transfer_reference,
    ):
        body = _found(client, term)
        assert listed(foreign) not in body, term
    assert listed(own) in _found(client, str(own.pk))
    assert listed(own) in _found(client, "amina@ntzs.test")


def test_the_list_says_more_than_its_count_limit_instead_of_counting_on(
    login, neema, amina, nmb, monkeypatch
):
    for n in range(3):
        transfer(amina, nmb, amount=5_000 + n)
    client = login(neema)

    exact = client.get(CHANGELIST).content.decode()
    monkeypatch.setattr(BoundedCountPaginator, "limit", 2)
    bounded = client.get(CHANGELIST).content.decode()

    assert "3 deposits" in exact and "more than" not in exact
    assert "more than 2 deposits" in bounded
