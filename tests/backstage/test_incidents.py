"""Incident records (issue 15 point 3; DESIGN §4, §9): the INC-YYYY-MM-NNN reference (also
under concurrent openings), who may open and read them, funds "not yet known", status changes
by compare-and-set, and the done-when scenario on the local chain: an untracked-mint alert →
an incident opened from it → the token paused → a reconciliation entry → a note, all in the
timeline in order and in the Markdown report."""

# ruff: noqa: F811 - tests take the imported fixtures as arguments
from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import time_machine
from django.db import connection
from django.urls import reverse

from backstage.incident_selectors import incident_report_markdown, incident_timeline
from backstage.models import Incident, IncidentNote, IncidentStatusChange
from backstage.services import (
    IncidentRefused,
    incident_link_action,
    incident_note_add,
    incident_open,
    incident_status_set,
)
from core.alerts import UNTRACKED_MINT
from core.exceptions import ConflictError, PermissionRefused
from core.models import AdminAction, Alert, AppendOnlyError
from core.services import admin_action_record, alert_raise, dual_control_approve
from minting.breaker import rpc_breaker
from minting.chain import role_id
from minting.services.token_admin import token_pause
from reconciliation.models import ReconciliationEntry
from reconciliation.services.entries import reconciliation_entry_request
from reconciliation.services.matching import index_chain_run
from tests.backstage.conftest import transfer
from tests.factories import super_admin
from tests.minting.conftest import minting  # noqa: F401 - the chain set-up
from tests.support.anvil import DEV_ADDRESSES

UNITS = 10**18
OUTSIDER = DEV_ADDRESSES[5]
REFERENCE = re.compile(r"^INC-\d{4}-\d{2}-\d{3}$")


def _open(actor, **overrides) -> Incident:
    values = {
        "actor": actor,
        "title": "Suspicious mint",
        "what_happened": "A mint nobody asked for.",
        "severity": "high",
    }
    return incident_open(**(values | overrides))


# --- The reference ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_references_count_within_the_utc_month(neema):
    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC), tick=False):
        first, second = _open(neema), _open(neema)
    # 02:30 in Dar es Salaam on 1 January is still 31 December in UTC: the same month
    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC), tick=False):
        third = _open(neema)
    with time_machine.travel(dt.datetime(2027, 1, 1, 0, 5, tzinfo=dt.UTC), tick=False):
        january = _open(neema)

    assert [i.reference for i in (first, second, third, january)] == [
        "INC-2026-12-001",
        "INC-2026-12-002",
        "INC-2026-12-003",
        "INC-2027-01-001",
    ]
    assert all(REFERENCE.match(i.reference) for i in Incident.objects.all())


@pytest.mark.django_db(transaction=True)
def test_openings_at_the_same_moment_take_different_numbers():
    officer = super_admin(email="officer@ntzs.test")
    openers = 4
    barrier = threading.Barrier(openers)
    references: list[str] = []
    errors: list[BaseException] = []

    def open_one(i: int) -> None:
        try:
            barrier.wait()
            references.append(_open(officer, title=f"at once {i}").reference)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    month = Incident.objects.first().month
    assert sorted(references) == [f"INC-{month}-{n:03d}" for n in range(1, openers + 1)]
    assert Incident.objects.count() == openers
    assert AdminAction.objects.filter(action="incident.open").count() == openers


# --- Who may ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_bank_admin_is_refused_every_incident_page_and_service(
    nmb_admin, nmb, amina, neema, login
):
    incident = _open(neema)
    client = login(nmb_admin)
    pages = [
        reverse("admin:incidents"),
        reverse("admin:incident_open"),
        reverse("admin:incident", args=[incident.pk]),
        reverse("admin:incident_edit", args=[incident.pk]),
        reverse("admin:incident_report_md", args=[incident.pk]),
        reverse("admin:incident_report", args=[incident.pk]),
    ]
    assert [client.get(page).status_code for page in pages] == [403] * len(pages)
    note = client.post(reverse("admin:incident_note", args=[incident.pk]), {"text": "mine"})
    assert note.status_code == 403
    assert "Incidents" not in client.get(reverse("admin:index")).content.decode()
    # an alert about their own bank's deposit: they see it, without "Open incident"
    alert, _ = alert_raise(kind="deposit stuck", key="x", deposit_id=transfer(amina, nmb).pk)
    alert_page = client.get(reverse("admin:core_alert_change", args=[alert.pk]))
    assert alert_page.status_code == 200 and "Open incident" not in alert_page.content.decode()

    with pytest.raises(PermissionRefused):
        _open(nmb_admin)
    with pytest.raises(PermissionRefused):
        incident_note_add(incident_id=incident.pk, actor=nmb_admin, text="mine")
    assert IncidentNote.objects.count() == 0
    assert Incident.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["neema", "salim"])
def test_compliance_officers_and_super_admins_open_and_read_incidents(persona, request, login):
    person = request.getfixturevalue(persona)
    client = login(person)
    assert 'href="/backstage/incidents/"' in client.get(reverse("admin:index")).content.decode()

    response = client.post(
        reverse("admin:incident_open"),
        {
            "title": "Minter key seen in a log file",
            "severity": "critical",
            "what_happened": "The key was printed by a debug line.",
            "impacted_addresses": f"{OUTSIDER.lower()}\n{OUTSIDER}",
        },
    )

    incident = Incident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:incident", args=[incident.pk])
    assert incident.opened_by == person and incident.impacted_addresses == [OUTSIDER]
    page = client.get(response["Location"]).content.decode()
    assert incident.reference in page and "Minter key seen in a log file" in page
    assert client.get(reverse("admin:incidents")).status_code == 200


# --- What is recorded -----------------------------------------------------------------------


@pytest.mark.django_db
def test_blank_funds_are_not_yet_known_never_zero(neema, login):
    incident = _open(neema)
    assert (incident.funds_at_risk_tzs, incident.funds_lost_tzs) == (None, None)
    report = incident_report_markdown(incident)
    assert "**Funds at risk:** not yet known" in report
    assert "**Funds lost:** not yet known" in report

    counted = _open(neema, funds_at_risk_tzs=2_500_000, funds_lost_tzs=0)
    report = incident_report_markdown(counted)
    assert "**Funds at risk:** 2,500,000 TZS" in report and "**Funds lost:** 0 TZS" in report

    page = login(neema).get(reverse("admin:incident_report", args=[incident.pk])).content.decode()
    assert page.count("not yet known") == 2
    assert "<style" not in page and "<script" not in page and "incident_report.css" in page


@pytest.mark.django_db
def test_a_bad_address_negative_funds_or_a_blank_title_are_refused(neema):
    with pytest.raises(IncidentRefused, match="not an address"):
        _open(neema, impacted_addresses=["0x1234"])
    with pytest.raises(IncidentRefused, match="whole number of shillings"):
        _open(neema, funds_lost_tzs=-1)
    with pytest.raises(IncidentRefused, match="title"):
        _open(neema, title="  ")
    with pytest.raises(IncidentRefused, match="transaction hash"):
        _open(neema, tx_hash="0xabc")
    assert Incident.objects.count() == 0


@pytest.mark.django_db
def test_a_status_changes_only_from_what_the_person_saw(neema, salim, login):
    incident = _open(neema)
    incident_status_set(
        incident_id=incident.pk,
        actor=salim,
        from_status="open",
        to_status="contained",
        note="token paused",
    )
    with pytest.raises(ConflictError, match="no longer open"):
        incident_status_set(
            incident_id=incident.pk, actor=neema, from_status="open", to_status="resolved"
        )
    # through the page: the button posts the status the page showed
    client = login(neema)
    url = reverse("admin:incident_status", args=[incident.pk])
    client.post(url, {"from_status": "contained", "to_status": "resolved"})
    stale = client.post(url, {"from_status": "contained", "to_status": "open"}, follow=True)
    assert "no longer contained" in stale.content.decode()
    with pytest.raises(IncidentRefused, match="does not go from resolved to contained"):
        incident_status_set(
            incident_id=incident.pk, actor=neema, from_status="resolved", to_status="contained"
        )

    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert list(IncidentStatusChange.objects.values_list("from_status", "to_status")) == [
        ("open", "contained"),
        ("contained", "resolved"),
    ]
    assert AdminAction.objects.filter(action="incident.status").count() == 2


@pytest.mark.django_db
def test_notes_are_append_only(neema):
    incident = _open(neema)
    note = incident_note_add(incident_id=incident.pk, actor=neema, text="called the bank")
    note.text = "changed"
    with pytest.raises(AppendOnlyError, match="append-only"):
        note.save()
    with pytest.raises(AppendOnlyError, match="never deleted"):
        note.delete()
    assert IncidentNote.objects.get().text == "called the bank"


@pytest.mark.django_db
def test_an_action_is_linked_once_and_an_incidents_own_audit_rows_not_at_all(neema, salim):
    incident = _open(neema)
    freeze = admin_action_record(
        actor=salim,
        action="token.freeze",
        target_type="address",
        target_id=OUTSIDER,
        outcome="safe_payload",
        reason="stolen funds",
    )
    incident_link_action(incident_id=incident.pk, action_id=freeze.pk, actor=neema)
    with pytest.raises(ConflictError, match="already linked"):
        incident_link_action(incident_id=incident.pk, action_id=freeze.pk, actor=neema)
    own = AdminAction.objects.get(action="incident.open")
    with pytest.raises(IncidentRefused, match="own audit rows"):
        incident_link_action(incident_id=incident.pk, action_id=own.pk, actor=neema)

    assert list(incident.admin_actions.all()) == [freeze]
    assert [i.kind for i in incident_timeline(incident)] == ["opened", "action"]


@pytest.mark.django_db
def test_another_alert_is_linked_from_the_page_and_joins_the_timeline(neema, login):
    incident = _open(neema)
    role_alert, _ = alert_raise(kind="unexpected token role holder", key="MINTER_ROLE:0xabc")
    client = login(neema)
    url = reverse("admin:incident", args=[incident.pk])
    assert f'<option value="{role_alert.pk}">' in client.get(url).content.decode()

    client.post(
        reverse("admin:incident_link", args=[incident.pk]),
        {"kind": "alert", "target": str(role_alert.pk)},
    )
    again = client.post(
        reverse("admin:incident_link", args=[incident.pk]),
        {"kind": "alert", "target": str(role_alert.pk)},
        follow=True,
    )

    assert "already linked" in again.content.decode()
    assert list(incident.alerts.all()) == [role_alert]
    texts = [item.text for item in incident_timeline(incident)]
    assert texts[1] == "Alert raised: unexpected token role holder (MINTER_ROLE:0xabc)"


@pytest.mark.django_db
def test_what_becomes_known_is_recorded_later_with_its_old_and_new_values(neema, salim, login):
    incident = _open(neema)
    client = login(salim)
    response = client.post(
        reverse("admin:incident_edit", args=[incident.pk]),
        {
            "title": incident.title,
            "severity": "critical",
            "what_happened": incident.what_happened,
            "funds_at_risk_tzs": "777",
            "funds_lost_tzs": "",
            "control_added": "MINTER_ROLE held only by the worker key and the Safe.",
            "reason": "counted with the bank",
        },
    )

    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.severity, incident.funds_at_risk_tzs, incident.funds_lost_tzs) == (
        "critical",
        777,
        None,
    )
    update = AdminAction.objects.get(action="incident.update")
    assert update.params["changed"]["funds_at_risk_tzs"] == [None, 777]
    assert update.params["changed"]["severity"] == ["high", "critical"]
    assert "funds_lost_tzs" not in update.params["changed"]  # still not known
    report = incident_report_markdown(incident)
    assert "**Funds at risk:** 777 TZS" in report and "**Funds lost:** not yet known" in report
    assert "MINTER_ROLE held only by the worker key and the Safe." in report
    assert "Record updated: control_added, funds_at_risk_tzs, severity" in report


# --- Done when: an incident opened from an untracked-mint alert --------------------------------


@pytest.fixture
def untracked_mint(minting, settings):
    """A mint with the admin key (granted MINTER_ROLE) outside the system, indexed: the
    reconciliation raises the untracked-mint alert the way it does in production."""
    settings.NTZS_DEPLOY_BLOCK = minting.deploy_block
    settings.OPERATOR_PRIVATE_KEY = ""  # the Safe-payload lane
    rpc_breaker().reset()
    minting.transact(
        minting.admin_key,
        minting.contract.functions.grantRole(role_id("MINTER_ROLE"), minting.admin_address),
    )
    receipt = minting.transact(
        minting.admin_key, minting.contract.functions.mint(OUTSIDER, 777 * UNITS)
    )
    assert index_chain_run()["matching"]["untracked_opened"] == 1
    yield "0x" + bytes(receipt["transactionHash"]).hex(), receipt["logs"][0]["logIndex"]
    rpc_breaker().reset()


@pytest.mark.django_db
def test_an_incident_opened_from_an_untracked_mint_alert_collects_pause_entry_and_notes(
    untracked_mint, neema, salim, login
):
    tx_hash, log_index = untracked_mint
    alert = Alert.objects.get(kind=UNTRACKED_MINT)
    officer = login(neema)

    # The alert's page offers "Open incident"; the form comes with the transaction prefilled.
    alert_page = officer.get(reverse("admin:core_alert_change", args=[alert.pk])).content.decode()
    open_url = f"{reverse('admin:incident_open')}?alert={alert.pk}"
    assert f'href="{open_url}"' in alert_page
    form = officer.get(open_url).content.decode()
    assert tx_hash in form and OUTSIDER in form
    response = officer.post(
        open_url,
        {
            "title": "Untracked mint of 777 nTZS",
            "severity": "critical",
            "what_happened": "777 nTZS minted with the admin key, outside the system.",
            "tx_hash": tx_hash,
            "impacted_addresses": OUTSIDER,
        },
    )
    incident = Incident.objects.get()
    assert response.status_code == 302
    assert list(incident.alerts.all()) == [alert] and incident.tx_hash == tx_hash

    # The token paused (Safe-payload lane: no operator key), then linked from the page.
    pause = token_pause(actor=salim, reason=f"{incident.reference}: untracked mint")
    assert pause.lane == "safe"
    detail = officer.get(reverse("admin:incident", args=[incident.pk])).content.decode()
    assert f'<option value="{pause.action_id}">' in detail  # offered among recent actions
    officer.post(
        reverse("admin:incident_link", args=[incident.pk]),
        {"kind": "action", "target": str(pause.action_id)},
    )

    # The reconciliation entry, by two super admins, linked by its ID.
    checker = super_admin(email="checker@ntzs.test")
    request = reconciliation_entry_request(
        maker=salim,
        entry_type="untracked_mint",
        amount_units=777 * UNITS,
        reason=f"{incident.reference}: minted with the admin key",
        tx_hash=tx_hash,
        log_index=log_index,
    )
    dual_control_approve(request_id=request.pk, checker=checker)
    entry = ReconciliationEntry.objects.get()
    officer.post(
        reverse("admin:incident_link", args=[incident.pk]),
        {"kind": "entry", "target": "", "target_id": str(entry.pk)},
    )
    officer.post(
        reverse("admin:incident_note", args=[incident.pk]),
        {"text": "Admin key holder interviewed; MINTER_ROLE to be revoked."},
    )
    assert index_chain_run()["matching"]["untracked_resolved"] == 1  # the entry explains it

    timeline = incident_timeline(incident)
    kinds = [item.kind for item in timeline]
    assert kinds == ["alert", "opened", "action", "entry", "note", "alert"], timeline
    assert [item.at for item in timeline] == sorted(item.at for item in timeline)
    assert (
        timeline[2].text.startswith("token.pause on token") and "safe_payload" in timeline[2].text
    )
    assert timeline[5].text.startswith("Alert resolved")

    report = officer.get(reverse("admin:incident_report_md", args=[incident.pk]))
    assert report["Content-Type"].startswith("text/markdown")
    assert f'filename="{incident.reference}.md"' in report["Content-Disposition"]
    text = report.content.decode()
    assert text == incident_report_markdown(incident)
    for expected in (
        f"# {incident.reference}: Untracked mint of 777 nTZS",
        "**Severity:** critical",
        "**Status:** open",
        f"`{OUTSIDER}`",
        "**Funds at risk:** not yet known",
        "Alert raised: untracked mint",
        "token.pause on token",
        "Reconciliation entry untracked_mint: 777 nTZS",
        "Admin key holder interviewed; MINTER_ROLE to be revoked.",
    ):
        assert expected in text, expected
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(timeline)  # the header and one row per event
    assert set(
        AdminAction.objects.filter(target_type="incident").values_list("action", flat=True)
    ) == {
        "incident.open",
        "incident.link_action",
        "incident.link_entry",
        "incident.note",
    }
