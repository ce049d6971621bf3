"""The deposit list and detail of Backstage: what each person sees (bank admins their own bank
only), the search and filters, every recorded fact of one deposit on its page, and the
buttons offered by role; the pages read only and cost a bounded number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.clock import now
from core.services import admin_action_record
from deposits.models import DepositRequest, PaymentNotification
from deposits.services.bank import deposit_bank_approve
from minting.models import MintAttempt, MintLogClaim, MintTransaction, SignerAccount
from reconciliation.models import ChainTransfer, IndexerCursor
from tests.backstage.conftest import transfer

pytestmark = pytest.mark.django_db

CHANGELIST = "/backstage/deposits/depositrequest/"
TX_HASH = "0x" + "ab" * 32


def _detail(deposit) -> str:
    return reverse("admin:deposits_depositrequest_change", args=[deposit.pk])


def _act(deposit, name: str) -> str:
    return reverse("admin:deposits_depositrequest_action", args=[deposit.pk, name])


def test_the_list_shows_the_deposits_columns(login, neema, amina, nmb):
    deposit = transfer(amina, nmb, amount=7_500)

    body = login(neema).get(CHANGELIST).content.decode()

    assert str(deposit.pk) in body
    assert "amina@ntzs.test" in body
    assert "7500" in body or "7,500" in body
    assert "NMB" in body and "bank_transfer" in body.lower().replace(" ", "_")
    for column in ("column-age", "column-held", "column-status", "column-customer_email"):
        assert column in body


@pytest.mark.parametrize(
    "field",
    ["id", "transfer_reference", "user__email", "mint_tx_hash", "psp_reference"],
)
def test_the_list_is_searched_by_id_reference_email_and_hash(login, neema, amina, juma, nmb, field):
    wanted = transfer(amina, nmb, amount=5_000)
    other = transfer(juma, nmb, amount=6_000)
    DepositRequest.objects.filter(pk=wanted.pk).update(
        mint_tx_hash=TX_HASH, psp_reference="NMB-SEARCH-42"
    )
    wanted.refresh_from_db()
    term = {
        "id": str(wanted.pk),
        "transfer_reference": wanted.transfer_reference,
        "user__email": "amina@ntzs.test",
        "mint_tx_hash": TX_HASH,
        "psp_reference": "NMB-SEARCH-42",
    }[field]

    body = login(neema).get(CHANGELIST, {"q": term}).content.decode()

    assert str(wanted.pk) in body
    assert str(other.pk) not in body


def test_the_list_is_searched_by_phone(login, neema, amina, nmb):
    wanted = transfer(amina, nmb)
    DepositRequest.objects.filter(pk=wanted.pk).update(buyer_phone="+255787000111")

    body = login(neema).get(CHANGELIST, {"q": "787000111"}).content.decode()

    assert str(wanted.pk) in body


def test_the_list_filters_held_deposits_and_by_status(login, nmb_admin, neema, amina, juma, nmb):
    held = transfer(amina, nmb, amount=5_000)
    plain = transfer(juma, nmb, amount=6_000)
    deposit_bank_approve(
        deposit_id=held.pk, actor=nmb_admin, bank_reference="H-1", amount_received_tzs=4_000
    )
    client = login(neema)

    only_held = client.get(CHANGELIST, {"held": "yes"}).content.decode()
    submitted = client.get(CHANGELIST, {"status__exact": "submitted"}).content.decode()
    minted = client.get(CHANGELIST, {"status__exact": "minted"}).content.decode()

    assert str(held.pk) in only_held and str(plain.pk) not in only_held
    assert str(held.pk) in submitted and str(plain.pk) in submitted
    assert str(plain.pk) not in minted


def test_the_bank_filter_names_only_the_banks_the_person_may_see(
    login, nmb_admin, neema, amina, juma, nmb, exim
):
    transfer(amina, nmb)
    transfer(juma, exim)

    as_bank = login(nmb_admin).get(CHANGELIST).content.decode()
    as_compliance = login(neema).get(CHANGELIST).content.decode()

    assert f"bank__id__exact={nmb.pk}" in as_compliance
    assert f"bank__id__exact={exim.pk}" in as_compliance
    # One bank is no choice: the filter is left out, and the other bank is never named.
    assert f"bank__id__exact={exim.pk}" not in as_bank
    assert "Exim" not in as_bank


def test_the_detail_shows_every_fact_of_the_deposit(login, neema, nmb_admin, amina, nmb, settings):
    settings.EXPLORER_URL = "https://sepolia.basescan.org"
    deposit = transfer(amina, nmb)
    deposit_bank_approve(
        deposit_id=deposit.pk,
        actor=nmb_admin,
        bank_reference="NMB-FACT-1",
        amount_received_tzs=5_000,
    )
    PaymentNotification.objects.create(
        kind="order_status", order_id=str(deposit.pk), deposit=deposit, body='{"raw": "BODY-42"}'
    )
    mint = MintTransaction.objects.create(
        deposit=deposit,
        chain_id=31337,
        contract_address="0x" + "11" * 20,
        to_address=amina.test_wallet.address,
        amount_units=5_000 * 10**18,
        status=MintTransaction.Status.FAILED,
        error="execution reverted: paused",
    )
    signer = SignerAccount.objects.create(address="0x" + "cd" * 20, chain_id=31337)
    MintAttempt.objects.create(
        mint_transaction=mint,
        signer=signer,
        nonce=7,
        tx_hash=TX_HASH,
        raw_tx="0x00",
        max_fee_per_gas=1,
        max_priority_fee_per_gas=1,
        gas_limit=100_000,
        status=MintAttempt.Status.MINED_REVERTED,
    )

    page = login(neema).get(_detail(deposit))

    body = page.content.decode()
    assert page.status_code == 200
    assert "NMB-FACT-1" in body  # the bank approval
    assert "submitted" in body and "deposit.bank_approved" in body  # transition, admin action
    assert "BODY-42" in body  # the raw body: compliance reads it
    assert "execution reverted: paused" in body
    assert f"https://sepolia.basescan.org/tx/{TX_HASH}" in body
    assert 'id="facts-safe"' in body and 'id="facts-four-eyes"' in body
    assert 'id="facts-claims"' in body


def test_a_bank_admin_sees_the_notifications_without_their_raw_body(login, nmb_admin, amina, nmb):
    deposit = transfer(amina, nmb)
    PaymentNotification.objects.create(
        kind="webhook", order_id=str(deposit.pk), deposit=deposit, body='{"raw": "BODY-43"}'
    )

    body = login(nmb_admin).get(_detail(deposit)).content.decode()

    assert "webhook" in body
    assert "BODY-43" not in body


def test_the_detail_offers_the_actions_of_the_persons_role(login, nmb_admin, neema, amina, nmb):
    deposit = transfer(amina, nmb)

    as_bank = login(nmb_admin).get(_detail(deposit)).content.decode()
    as_compliance = login(neema).get(_detail(deposit)).content.decode()

    assert _act(deposit, "bank-approve") in as_bank
    assert _act(deposit, "bank-reject") in as_bank
    assert _act(deposit, "platform-approve") not in as_bank
    assert _act(deposit, "cancel") not in as_bank
    assert _act(deposit, "platform-approve") in as_compliance
    assert _act(deposit, "cancel") in as_compliance
    assert _act(deposit, "bank-approve") not in as_compliance
    assert _act(deposit, "retry-mint") not in as_compliance  # not a failed mint


def test_the_detail_costs_the_same_queries_for_a_longer_history(login, neema, amina, nmb):
    deposit = transfer(amina, nmb)
    client = login(neema)
    client.get(_detail(deposit))  # the session's first page also records its last activity

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(_detail(deposit)).status_code == 200
        return len(captured)

    short = queries()
    assert short > 0  # the queries are really counted
    for n in range(5):
        admin_action_record(
            actor=neema, action=f"note.{n}", target_type="deposit", target_id=deposit.pk
        )
        PaymentNotification.objects.create(
            kind="webhook", order_id=str(deposit.pk), deposit=deposit
        )

    assert queries() == short


def test_the_detail_changes_nothing_and_has_no_submit_button(login, salim, amina, nmb):
    deposit = transfer(amina, nmb)

    page = login(salim).get(_detail(deposit))

    assert 'type="submit"' not in page.content.decode().split('id="content-main"')[1]
    assert DepositRequest.objects.get(pk=deposit.pk).status == "submitted"


def test_the_confirmation_page_speaks_kiswahili(login, nmb_admin, amina, nmb, settings):
    deposit = transfer(amina, nmb)
    client = login(nmb_admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"

    body = client.get(_act(deposit, "bank-approve")).content.decode()

    assert "Kitakachotokea" in body
    assert "Idhini ya benki: pesa zimepokelewa" in body
    assert "What will happen" not in body


def test_the_detail_shows_the_deposits_own_times_as_the_site_does(
    login, neema, amina, nmb, settings
):
    """East Africa Time in the site's one format (core.templatetags.site_time), in both
    languages, not Django's per-language DATETIME_FORMAT."""
    deposit = transfer(amina, nmb)
    DepositRequest.objects.filter(pk=deposit.pk).update(
        created_at=dt.datetime(2026, 12, 2, 5, 48, 5, tzinfo=dt.UTC)
    )
    client = login(neema)

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    swahili = client.get(_detail(deposit)).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the last request's language stays
    english = client.get(_detail(deposit)).content.decode()

    created = english.split("field-created_at")[1].split("field-updated_at")[0]
    assert "2 Dec 2026, 08:48:05 EAT" in created
    assert "Dec. 2, 2026" not in english
    assert "2 Des 2026, 08:48:05 EAT" in swahili.split("field-created_at")[1]
    cancelled = english.split("field-cancelled_at")[1].split("</fieldset>")[0]
    assert '<div class="readonly">-</div>' in cancelled


def test_the_detail_says_whether_the_indexer_holds_each_claimed_log(login, neema, amina, nmb):
    indexed_deposit, missing_deposit, fresh_deposit = (transfer(amina, nmb) for _ in range(3))
    later = now() + dt.timedelta(minutes=1)  # a claim made after the indexer's last run
    claims = {
        d.pk: MintLogClaim.objects.create(
            chain_id=31337,
            tx_hash="0x" + f"{n:02x}" * 32,
            log_index=0,
            deposit=d,
            **({"claimed_at": later} if d is fresh_deposit else {}),
        )
        for n, d in enumerate((indexed_deposit, missing_deposit, fresh_deposit), start=1)
    }
    ChainTransfer.objects.create(
        chain_id=31337,
        tx_hash=claims[indexed_deposit.pk].tx_hash,
        log_index=0,
        block_number=77,
        block_hash="0x" + "77" * 32,
        from_address="0x" + "00" * 20,
        to_address="0x" + "aa" * 20,
        amount_units=5_000 * 10**18,
        kind="mint",
    )
    IndexerCursor.objects.create(  # the indexer ran after the first two claims
        name="transfers", chain_id=31337, block_number=90, block_hash="0x" + "90" * 32
    )
    client = login(neema)

    def facts(deposit) -> str:
        return client.get(_detail(deposit)).content.decode().split('id="facts-claims"')[1]

    assert "indexed at block 77" in facts(indexed_deposit)
    assert "missing: the indexer passed it without finding the log" in facts(missing_deposit)
    assert "not indexed yet" in facts(fresh_deposit)
