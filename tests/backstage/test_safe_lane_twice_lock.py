""" "This export could mint twice" is the export service's rule, decided with the deposits
locked (DESIGN §7.9): an earlier export that could still be executed next to the new one must
be confirmed, by its id, by the person exporting. An export made after the Backstage page was
rendered, or by a second operator at the same moment, is never confirmed by a tick given for
what the page showed. On the session's anvil token; a token "without references" is the
stated policy ``NTZS_MINT_WITH_REF = False``."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from backstage import safe_lane
from core.models import AdminAction
from minting.contract_artifact import deposit_ref
from minting.models import SafeBatchExport
from minting.services.safe import SafeExportCouldMintTwice, safe_batch_file
from tests.factories import compliance_officer
from tests.support.safe_lane import safe_deposit

EXPORT = "/backstage/safe/export/"


@pytest.fixture(autouse=True)
def lane(chain_settings, settings):
    """Django on the session's anvil token, a token without references unless a test says."""
    settings.MINT_CONFIRMATIONS = 1
    settings.NTZS_MINT_WITH_REF = False
    return chain_settings


def operator(name: str = "zawadi"):
    """Another compliance officer (Neema is the fixture)."""
    return compliance_officer(email=f"{name}@ntzs.test", full_name=name.title())


def post_export(client, deposit, **fields):
    return client.post(EXPORT, {"deposit": [str(deposit.pk)], **fields})


def exports_of(deposit) -> int:
    return SafeBatchExport.objects.filter(deposits=deposit).count()


# --- Through Backstage: the page was rendered before someone else exported ------------------


@pytest.mark.django_db
def test_an_export_made_after_the_page_was_rendered_refuses_the_post_without_the_tick(
    login, neema, amina
):
    deposit = safe_deposit(amina)
    client = login(neema)
    page = client.get(f"{EXPORT}?deposit={deposit.pk}").content.decode()
    assert "safe-export-danger" not in page  # nothing exported yet: no box to tick

    # Meanwhile a second operator exports the same deposit (command line or another browser).
    other = safe_batch_file(deposit_ids=[deposit.pk], actor=operator())

    response = post_export(client, deposit)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "This export could mint twice: tick the box" in page
    # Shown again as it is now: the other export listed and carried by the form, box unticked.
    assert "safe-export-danger" in page and other["export_id"] in page
    assert f'name="checked_export" value="{other["export_id"]}"' in page
    assert response.context["form"]["acknowledge"].value() is False
    assert exports_of(deposit) == 1
    assert AdminAction.objects.filter(action="safe.batch_file", actor=neema).count() == 0


@pytest.mark.django_db
def test_an_export_made_while_the_post_is_being_answered_is_caught_under_the_lock(
    login, neema, amina, monkeypatch
):
    """The interleaving the view alone could not see: the POST's own preview finds no earlier
    export, then another operator's export commits, then the export service runs."""
    deposit = safe_deposit(amina)
    real_preview = safe_lane.safe_batch_preview
    raced: list[str] = []

    def preview_then_race(ids):
        preview = real_preview(ids)
        if not raced:
            raced.append(safe_batch_file(deposit_ids=ids, actor=operator())["export_id"])
        return preview

    monkeypatch.setattr(safe_lane, "safe_batch_preview", preview_then_race)
    response = login(neema).post(EXPORT, {"deposit": [str(deposit.pk)]})
    assert response["Content-Type"].startswith("text/html")
    assert "This export could mint twice: tick the box" in response.content.decode()
    assert raced and exports_of(deposit) == 1


@pytest.mark.django_db
def test_a_tick_given_for_one_earlier_export_does_not_cover_one_made_after_the_page(
    login, neema, amina
):
    deposit = safe_deposit(amina)
    first = safe_batch_file(deposit_ids=[deposit.pk], actor=operator())["export_id"]
    client = login(neema)
    page = client.get(f"{EXPORT}?deposit={deposit.pk}").content.decode()
    assert f'name="checked_export" value="{first}"' in page

    # A second operator, having checked the first export, exports again before Neema's POST.
    second = safe_batch_file(deposit_ids=[deposit.pk], actor=operator(), checked_exports=[first])[
        "export_id"
    ]

    refused = post_export(client, deposit, checked_export=first, acknowledge="on")
    assert refused["Content-Type"].startswith("text/html")
    assert "This export could mint twice" in refused.content.decode()
    assert exports_of(deposit) == 2

    # Having checked both in the Safe app, she confirms both and the export is made.
    done = post_export(client, deposit, checked_export=[first, second], acknowledge="on")
    assert done["Content-Type"] == "application/json"
    assert exports_of(deposit) == 3


@pytest.mark.django_db
def test_the_hidden_ids_without_the_tick_confirm_nothing(login, neema, amina):
    deposit = safe_deposit(amina)
    first = safe_batch_file(deposit_ids=[deposit.pk], actor=operator())["export_id"]
    client = login(neema)
    refused = post_export(client, deposit, checked_export=first)
    assert "This export could mint twice: tick the box" in refused.content.decode()
    assert exports_of(deposit) == 1


# --- The service itself -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_service_refuses_naming_the_unconfirmed_export_and_writes_nothing(neema, amina):
    deposit = safe_deposit(amina)
    first = safe_batch_file(deposit_ids=[deposit.pk], actor=neema)["export_id"]
    actions = AdminAction.objects.count()

    with pytest.raises(SafeExportCouldMintTwice) as caught:
        safe_batch_file(deposit_ids=[deposit.pk], actor=neema)
    assert str(caught.value) == (
        f"This export could mint twice: earlier export(s) {first} of these deposits can still "
        "be executed, so check in the Safe app that none of them will be (rejected, or "
        "replaced at the same Safe nonce) and confirm exactly those exports."
    )
    assert [str(i) for i in caught.value.export_ids] == [first]
    assert exports_of(deposit) == 1
    assert AdminAction.objects.count() == actions

    safe_batch_file(deposit_ids=[deposit.pk], actor=neema, checked_exports=[first])
    assert exports_of(deposit) == 2


@pytest.mark.django_db
def test_an_earlier_reference_export_doubles_a_plain_one_until_its_reference_is_voided(
    neema, amina, lane, settings
):
    settings.NTZS_MINT_WITH_REF = None  # detected: the session's token has mintForDeposit
    deposit = safe_deposit(amina)
    first = safe_batch_file(deposit_ids=[deposit.pk], actor=neema)
    assert first["calls"][0]["method"] == "mintForDeposit"
    # A second mintForDeposit export needs no confirmation: the token mints a reference once.
    safe_batch_file(deposit_ids=[deposit.pk], actor=neema)
    assert exports_of(deposit) == 2

    settings.NTZS_MINT_WITH_REF = False  # now plain: either earlier payload would mint again
    with pytest.raises(SafeExportCouldMintTwice) as caught:
        safe_batch_file(deposit_ids=[deposit.pk], actor=neema)
    assert len(caught.value.export_ids) == 2

    # Once the reference is voided on chain, the earlier payloads are dead.
    lane.transact(lane.minter_key, lane.contract.functions.voidDepositRef(deposit_ref(deposit.pk)))
    plain = safe_batch_file(deposit_ids=[deposit.pk], actor=neema)
    assert plain["calls"][0]["method"] == "mint"
    assert exports_of(deposit) == 3


@pytest.mark.django_db(transaction=True)
def test_two_operators_exporting_at_once_make_one_export_and_one_refusal(amina):
    deposit = safe_deposit(amina)
    operators = [operator("zawadi"), operator("baraka")]
    start = threading.Barrier(len(operators))
    outcomes: list[str] = []

    def export(actor) -> None:
        start.wait()
        try:
            safe_batch_file(deposit_ids=[deposit.pk], actor=actor)
            outcomes.append("exported")
        except SafeExportCouldMintTwice:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=export, args=(actor,)) for actor in operators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["exported", "refused"]
    assert exports_of(deposit) == 1
    assert AdminAction.objects.filter(action="safe.batch_file").count() == 1


# --- The command ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_command_refuses_until_the_earlier_export_is_named(neema, amina, tmp_path):
    deposit = safe_deposit(amina)
    first = safe_batch_file(deposit_ids=[deposit.pk], actor=neema)["export_id"]
    with pytest.raises(CommandError, match=f"This export could mint twice: .*{first}"):
        call_command("safe_batch_file", str(deposit.pk), "--actor", neema.email)
    assert exports_of(deposit) == 1

    out = tmp_path / "batch.json"
    call_command(
        "safe_batch_file",
        str(deposit.pk),
        "--actor",
        neema.email,
        "--checked-export",
        first,
        "--out",
        str(out),
    )
    assert exports_of(deposit) == 2 and out.exists()
