"""The Safe lane in Backstage (DESIGN §7.9, §9) through the real admin URLs, on the session's
anvil chain with a real local Safe: the queue per role, the batch file's preview (writes
nothing), the export (records a SafeBatchExport and downloads the file), the warnings about
earlier exports (loud on a token without deposit references), voiding an exported payload, the
maker's record of a consumed Safe nonce decided in the four-eyes queue, and the Safe record
form's three answers. A bank admin's forged POSTs and the beneficiary's own are refused."""

from __future__ import annotations

import json

import pytest

from core.models import AdminAction, DualControlRequest
from deposits.models import DepositRequest
from deposits.services.intake import DepositInput, deposit_create
from minting.chain import role_id
from minting.contract_artifact import deposit_ref
from minting.models import SafeBatchExport
from tests.factories import KycCaseFactory, WalletFactory
from tests.support.safe_lane import safe_deposit

pytestmark = pytest.mark.django_db

QUEUE = "/backstage/safe/"
EXPORT = "/backstage/safe/export/"
RECORD = "/backstage/safe/record/"
UNITS = 10**18


@pytest.fixture(autouse=True)
def lane(chain_settings, settings):
    """Django on the session's anvil token; the token's policy detected (it has references)."""
    settings.MINT_CONFIRMATIONS = 1
    settings.NTZS_MINT_WITH_REF = None
    return chain_settings


@pytest.fixture
def safe(local_safe, lane, settings):
    """The session's Safe holding MINTER_ROLE (reverted with the chain after the test)."""
    lane.transact(
        lane.admin_key,
        lane.contract.functions.grantRole(role_id("MINTER_ROLE"), local_safe.address),
    )
    settings.SAFE_ADDRESS = local_safe.address
    return local_safe


def execute(safe, lane, batch: dict) -> str:
    """The Safe executes the batch file's one transaction (what the Transaction Builder
    proposes for a single call); returns the mined transaction's hash."""
    (tx,) = batch["transactions"]
    tx_hash = safe.exec_call(tx["to"], bytes.fromhex(tx["data"][2:]))
    assert lane.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1
    return tx_hash


def export(client, *deposits, **fields):
    return client.post(EXPORT, {"deposit": [str(d.pk) for d in deposits], **fields})


def text(response) -> str:
    return response.content.decode()


def status_of(deposit) -> str:
    deposit.refresh_from_db()
    return deposit.status


# --- Who sees the Safe lane ------------------------------------------------------------------


def test_compliance_and_super_admins_open_every_safe_page_others_are_refused(
    login, neema, salim, nmb_admin, root, amina
):
    deposit = safe_deposit(amina)
    pages = [
        QUEUE,
        f"{EXPORT}?deposit={deposit.pk}",
        RECORD,
        f"{QUEUE}{deposit.pk}/void/",
        f"{QUEUE}{deposit.pk}/nonce/",
    ]
    for person in (neema, salim):
        client = login(person)
        for page in pages:
            assert client.get(page).status_code == 200, (person, page)
        queue = client.get(QUEUE)
        assert queue.context["backstage_can_see_safe"] is True
        assert str(deposit.pk) in text(queue) and "amina@ntzs.test" in text(queue)
        assert deposit.wallet.address in text(queue)
        assert 'href="/backstage/safe/"' in text(client.get("/backstage/"))
    for person in (nmb_admin, root):
        client = login(person)
        for page in pages:
            assert client.get(page).status_code == 403, (person, page)
        assert client.get("/backstage/").context["backstage_can_see_safe"] is False
    assert SafeBatchExport.objects.count() == 0


def test_the_queue_lists_only_safe_lane_deposits_with_their_exports(login, neema, amina, juma):
    waiting = safe_deposit(amina)
    small, _created = deposit_create(
        user=juma,
        data=DepositInput(
            amount_tzs=5_000,
            payment_provider=DepositRequest.Provider.ZENOPAY,
            wallet_id=juma.test_wallet.pk,
            buyer_phone="+255712345678",
        ),
    )
    client = login(neema)
    export(client, waiting)

    page = text(client.get(QUEUE))
    assert str(waiting.pk) in page and str(small.pk) not in page
    assert 'name="deposit"' in page and f'value="{waiting.pk}"' in page  # selectable
    # One earlier export, with deposit references, not voided on chain.
    assert 'class="number safe-exports">1<' in page
    assert "no: an exported payload can still be executed" in page
    assert f"/backstage/safe/{waiting.pk}/void/" in page


# --- The batch file: preview, export, warnings -------------------------------------------------


def test_the_preview_shows_the_exact_calls_and_writes_nothing(login, neema, amina, juma, lane):
    first, second = safe_deposit(amina, 10_000), safe_deposit(juma, 25_000)
    response = login(neema).get(f"{EXPORT}?deposit={first.pk}&deposit={second.pk}")

    assert response.status_code == 200
    preview = response.context["preview"]
    assert [c["deposit_id"] for c in preview.calls] == [str(first.pk), str(second.pk)]
    assert preview.total_tzs == 35_000 and preview.with_ref is True
    page = text(response)
    ref = "0x" + deposit_ref(first.pk).hex()
    assert "mintForDeposit(address,uint256,bytes32)" in page
    for value in (lane.address, first.wallet.address, str(10_000 * UNITS), ref):
        assert value in page
    # The payload itself is given out only by the export, which records it.
    assert preview.calls[0]["data"] not in page
    assert "TSh 35,000" in page
    assert "yes: the token has mintForDeposit" in page
    assert "safe-export-warning" not in page and "safe-export-danger" not in page
    assert SafeBatchExport.objects.count() == 0
    assert not AdminAction.objects.filter(action="safe.batch_file").exists()


def test_the_post_exports_records_and_downloads_the_batch_file(login, neema, amina, lane):
    deposit = safe_deposit(amina)
    response = export(login(neema), deposit, safe_nonce="7")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    saved = SafeBatchExport.objects.get()
    assert response["Content-Disposition"] == (
        f'attachment; filename="ntzs-safe-mint-{saved.pk}.json"'
    )
    batch = json.loads(response.content)
    assert batch == saved.payload["batch"]
    (tx,) = batch["transactions"]
    assert (tx["to"], tx["contractMethod"]["name"]) == (lane.address, "mintForDeposit")
    assert tx["contractInputsValues"]["amount"] == str(10_000 * UNITS)
    assert (saved.actor, saved.safe_nonce, list(saved.deposits.all())) == (neema, 7, [deposit])
    action = AdminAction.objects.get(action="safe.batch_file")
    assert (action.actor, action.target_id) == (neema, str(saved.pk))


def test_an_earlier_export_is_warned_about_on_a_token_with_references(login, neema, amina):
    deposit = safe_deposit(amina)
    client = login(neema)
    export(client, deposit)

    page = text(client.get(f"{EXPORT}?deposit={deposit.pk}"))
    assert "safe-export-warning" in page and "safe-export-danger" not in page
    assert "mints each deposit at most once" in page
    assert export(client, deposit).status_code == 200  # no acknowledgement needed
    assert SafeBatchExport.objects.count() == 2


def test_an_earlier_export_without_references_is_a_loud_danger_and_needs_a_tick(
    login, neema, amina, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = safe_deposit(amina)
    client = login(neema)
    export(client, deposit)

    page = text(client.get(f"{EXPORT}?deposit={deposit.pk}"))
    assert "safe-export-danger" in page and "Danger: this export can mint twice." in page
    assert "no: the token has only mint" in page
    # The page carries the earlier export it showed; the tick confirms exactly that one.
    first = SafeBatchExport.objects.get()
    assert f'name="checked_export" value="{first.pk}"' in page
    refused = export(client, deposit, checked_export=str(first.pk))
    assert refused["Content-Type"].startswith("text/html")
    assert "tick the box" in text(refused)
    assert SafeBatchExport.objects.count() == 1
    allowed = export(client, deposit, checked_export=str(first.pk), acknowledge="on")
    assert allowed["Content-Type"] == "application/json"
    assert SafeBatchExport.objects.count() == 2


def test_an_earlier_plain_export_is_a_danger_even_when_the_new_one_has_a_reference(
    login, neema, amina, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = safe_deposit(amina)
    client = login(neema)
    export(client, deposit)
    settings.NTZS_MINT_WITH_REF = None  # detected: this token has mintForDeposit

    response = client.get(f"{EXPORT}?deposit={deposit.pk}")
    assert response.context["preview"].calls[0]["method"] == "mintForDeposit"
    assert "Danger: this export can mint twice." in text(response)


def test_a_deposit_the_export_would_refuse_is_shown_with_its_sentence(login, neema, amina):
    deposit = safe_deposit(amina)
    DepositRequest.objects.filter(pk=deposit.pk).update(hold_reason="compliance review")
    client = login(neema)
    page = text(client.get(f"{EXPORT}?deposit={deposit.pk}"))
    assert "is on hold (compliance review); release the hold" in page
    assert "Export and download" not in page
    refused = export(client, deposit)
    assert "is on hold (compliance review)" in text(refused)
    assert SafeBatchExport.objects.count() == 0


def test_the_beneficiary_is_refused_in_the_services_words(login, neema, settlement_bank):
    KycCaseFactory(user=neema, approved=True)
    neema.test_wallet = WalletFactory(user=neema, verified=True)
    own = safe_deposit(neema)
    client = login(neema)
    response = export(client, own)
    assert "it is their own; another member of staff must do it." in text(response)
    assert SafeBatchExport.objects.count() == 0
    void = client.post(f"{QUEUE}{own.pk}/void/", follow=True)
    assert void["Content-Type"].startswith("text/html")
    assert "it is their own; another member of staff must do it." in text(void)
    assert not AdminAction.objects.filter(action="safe.void_payload").exists()


def test_forged_posts_by_a_bank_admin_are_refused_and_write_nothing(login, nmb_admin, amina):
    deposit = safe_deposit(amina)
    client = login(nmb_admin)
    assert export(client, deposit).status_code == 403
    assert (
        client.post(RECORD, {"deposit_id": deposit.pk, "tx_hash": "0x" + "1" * 64}).status_code
        == 403
    )
    assert client.post(f"{QUEUE}{deposit.pk}/void/").status_code == 403
    assert (
        client.post(
            f"{QUEUE}{deposit.pk}/nonce/", {"tx_hash": "0x" + "1" * 64, "evidence": "x"}
        ).status_code
        == 403
    )
    assert SafeBatchExport.objects.count() == 0
    assert not DualControlRequest.objects.exists()
    assert not AdminAction.objects.exists()
    assert status_of(deposit) == "mint_requires_safe"


def test_csrf_is_required_on_the_export(staff_otp_login, neema, amina):
    from django.test import Client

    deposit = safe_deposit(amina)
    strict = Client(enforce_csrf_checks=True)
    staff_otp_login(strict, neema)
    assert strict.post(EXPORT, {"deposit": str(deposit.pk)}).status_code == 403
    assert SafeBatchExport.objects.count() == 0


# --- Void and the consumed nonce ---------------------------------------------------------------


def test_voiding_an_exported_payload_downloads_the_void_call(login, neema, amina, lane):
    deposit = safe_deposit(amina)
    client = login(neema)
    export(client, deposit)
    page = f"{QUEUE}{deposit.pk}/void/"

    shown = text(client.get(page))
    ref = "0x" + deposit_ref(deposit.pk).hex()
    assert "voidDepositRef(bytes32)" in shown and ref in shown and lane.address in shown
    assert not AdminAction.objects.filter(action="safe.void_payload").exists()

    response = client.post(page)
    assert response["Content-Disposition"] == (
        f'attachment; filename="ntzs-safe-void-{deposit.pk}.json"'
    )
    (tx,) = json.loads(response.content)["transactions"]
    assert tx["contractMethod"]["name"] == "voidDepositRef"
    assert tx["contractInputsValues"] == {"depositRef": ref}
    action = AdminAction.objects.get(action="safe.void_payload")
    assert (action.actor, action.target_id) == (neema, str(deposit.pk))

    # Once the void is mined, the queue says the payload is dead.
    lane.transact(lane.minter_key, lane.contract.functions.voidDepositRef(deposit_ref(deposit.pk)))
    assert "yes: reference voided on chain" in text(client.get(QUEUE))


def test_there_is_nothing_to_void_on_a_token_without_references(login, neema, amina, settings):
    settings.NTZS_MINT_WITH_REF = False
    deposit = safe_deposit(amina)
    client = login(neema)
    export(client, deposit, acknowledge="on")
    page = text(client.get(f"{QUEUE}{deposit.pk}/void/"))
    assert "The token has no deposit references, so there is nothing to void" in page
    assert f"/backstage/safe/{deposit.pk}/nonce/" in page
    response = client.post(f"{QUEUE}{deposit.pk}/void/")
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
def test_a_consumed_nonce_is_requested_by_a_maker_and_approved_in_the_four_eyes_queue(
    login, neema, salim, amina, safe, lane, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = safe_deposit(amina)
    nonce = (
        lane.w3.eth.contract(
            address=safe.address,
            abi=[
                {
                    "inputs": [],
                    "name": "nonce",
                    "outputs": [{"type": "uint256", "name": ""}],
                    "stateMutability": "view",
                    "type": "function",
                }
            ],
        )
        .functions.nonce()
        .call()
    )
    maker = login(neema)
    export(maker, deposit, safe_nonce=str(nonce))
    # The Safe app's "reject": a Safe transaction at that nonce that mints nothing.
    cancel = safe.exec_call(
        lane.address,
        bytes.fromhex(lane.contract.encode_abi("approve", args=[lane.admin_address, 0])[2:]),
    )
    lane.w3.eth.wait_for_transaction_receipt(cancel, timeout=30)

    page = f"{QUEUE}{deposit.pk}/nonce/"
    empty = maker.post(page, {"tx_hash": cancel, "evidence": ""}, follow=True)
    assert "Describe how the Safe proposal was cancelled, for the checker." in text(empty)
    made = maker.post(
        page, {"tx_hash": cancel, "evidence": "rejected in the Safe app"}, follow=True
    )
    request = DualControlRequest.objects.get(action="safe_nonce_consumed_record")
    assert (request.maker, request.decision, request.params["safe_nonce"]) == (
        neema,
        "pending",
        nonce,
    )
    assert f"Four-eyes request {request.pk} is made" in text(made)
    assert "no: an exported payload can still be executed" in text(maker.get(QUEUE))

    checker = login(salim)
    assert str(request.pk) in text(checker.get("/backstage/four-eyes/"))
    checker.post(f"/backstage/four-eyes/{request.pk}/approve/", {"approve-reason": "seen"})
    request.refresh_from_db()
    assert (request.decision, request.checker) == ("approved", salim)
    assert "yes: Safe nonce consumed, recorded by two people" in text(checker.get(QUEUE))


# --- Recording the executed Safe transaction -----------------------------------------------------


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
def test_the_record_form_answers_minted(login, neema, amina, safe, lane):
    deposit = safe_deposit(amina)
    client = login(neema)
    tx_hash = execute(safe, lane, json.loads(export(client, deposit).content))

    response = client.post(RECORD, {"deposit_id": str(deposit.pk), "tx_hash": tx_hash})
    assert response.context["answer"].kind == "minted"
    assert f"Minted: deposit {deposit.pk} is minted by Safe transaction {tx_hash}." in text(
        response
    )
    assert status_of(deposit) == "minted" and deposit.mint_tx_hash == tx_hash
    assert AdminAction.objects.get(action="safe.mint_record").outcome == "minted"


@pytest.mark.parametrize("local_safe", ["1.4.1"], indirect=True)
def test_the_record_form_answers_awaiting_confirmations_then_minted(
    login, neema, amina, safe, lane, settings
):
    settings.MINT_CONFIRMATIONS = 3
    deposit = safe_deposit(amina)
    client = login(neema)
    tx_hash = execute(safe, lane, json.loads(export(client, deposit).content))
    form = {"deposit_id": str(deposit.pk), "tx_hash": tx_hash}

    waiting = client.post(RECORD, form)
    assert waiting.context["answer"].kind == "awaiting"
    assert "Awaiting confirmations" in text(waiting) and "3 block(s) deep" in text(waiting)
    assert status_of(deposit) == "mint_requires_safe"

    lane.node.rpc("anvil_mine", hex(2))
    assert client.post(RECORD, form).context["answer"].kind == "minted"
    assert status_of(deposit) == "minted"


def test_the_record_form_answers_the_refusal_exactly_as_the_service_gives_it(login, neema, amina):
    deposit = safe_deposit(amina)
    client = login(neema)
    unknown = "0x" + "ab" * 32
    response = client.post(RECORD, {"deposit_id": str(deposit.pk), "tx_hash": unknown})
    answer = response.context["answer"]
    assert answer.kind == "refused"
    assert answer.text == (
        f"Transaction {unknown} was not found on chain 31337; check the hash and the network, "
        "or wait until it is mined."
    )
    assert answer.text in text(response)
    bad = client.post(RECORD, {"deposit_id": str(deposit.pk), "tx_hash": "0x12"})
    assert bad.context["answer"].text == (
        "'0x12' is not a transaction hash (0x followed by 64 hex digits)."
    )
    assert status_of(deposit) == "mint_requires_safe"
    assert not AdminAction.objects.filter(action="safe.mint_record").exists()


def test_the_record_form_is_prefilled_from_the_queue(login, salim, amina):
    deposit = safe_deposit(amina)
    page = text(login(salim).get(f"{RECORD}?deposit={deposit.pk}"))
    assert f'value="{deposit.pk}"' in page


def test_the_safe_pages_speak_kiswahili(login, neema, amina, settings):
    deposit = safe_deposit(amina)
    client = login(neema)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"
    queue = text(client.get(QUEUE))
    assert "Hakiki faili la kundi" in queue and "haijawahi kutolewa" in queue
    preview = text(client.get(f"{EXPORT}?deposit={deposit.pk}"))
    assert "Ukurasa huu hautoi chochote." in preview
    assert "Toa na upakue faili la kundi" in preview
    record = text(client.get(RECORD))
    assert "Kagua na urekodi" in record and "Hash ya muamala wa Safe" in record
