"""Operations views (issue 13 point 2) and bank admins' alerts (issue 12): alerts listed open
first, acknowledged with a note (core.services.alert_acknowledge) and kept when resolved;
bank admins see only the alerts and audit rows about their own bank's deposits; the audit
log filters by actor, action and target; heartbeats show age and last error; payment
notifications filter by outcome; limit events are listed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from core.clock import now
from core.exceptions import ConflictError, NotFound, PermissionRefused, ServiceError
from core.models import AdminAction, Alert, TaskHeartbeat
from core.services import admin_action_record, alert_acknowledge, alert_raise
from deposits.models import LimitEvent, PaymentNotification
from deposits.selectors import alerts_visible_to
from tests.backstage.conftest import transfer
from tests.factories import compliance_officer

pytestmark = pytest.mark.django_db

ALERTS = reverse("admin:core_alert_changelist")
AUDIT = reverse("admin:core_adminaction_changelist")
HEARTBEATS = reverse("admin:core_taskheartbeat_changelist")
NOTIFICATIONS = reverse("admin:deposits_paymentnotification_changelist")
LIMIT_EVENTS = reverse("admin:deposits_limitevent_changelist")


def _ack_url(alert: Alert) -> str:
    return reverse("admin:operations_alert_acknowledge", args=[alert.pk])


def _detail(alert: Alert) -> str:
    return reverse("admin:core_alert_change", args=[alert.pk])


@pytest.fixture
def nmb_deposit(amina, nmb):
    return transfer(amina, nmb)


@pytest.fixture
def exim_deposit(juma, exim):
    return transfer(juma, exim, amount=7_000)


@pytest.fixture
def alerts(nmb_deposit, exim_deposit):
    """One system-wide alert and one about each bank's deposit, all open."""
    gas, _ = alert_raise(kind="minter gas low", detail="0.0001 ETH left")
    nmb_alert, _ = alert_raise(
        kind="unreadable payment",
        key=str(nmb_deposit.pk),
        detail="NMB-ALERT-DETAIL",
        deposit_id=nmb_deposit.pk,
    )
    exim_alert, _ = alert_raise(
        kind="unreadable payment",
        key=str(exim_deposit.pk),
        detail="EXIM-ALERT-DETAIL",
        deposit_id=exim_deposit.pk,
    )
    return {"gas": gas, "nmb": nmb_alert, "exim": exim_alert}


# --- Acknowledging ----------------------------------------------------------------------------


def test_an_alert_acknowledged_with_a_note_stays_listed_as_acknowledged(login, neema, alerts):
    alert = alerts["gas"]
    client = login(neema)

    page = client.get(_ack_url(alert)).content.decode()
    assert "What will happen" in page
    assert "core.services.alert_acknowledge" in page
    response = client.post(_ack_url(alert), {"note": "Topping up the minter from treasury."})

    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == neema
    assert alert.acknowledgement_note == "Topping up the minter from treasury."
    assert alert.acknowledged_at is not None
    assert alert.resolved_at is None  # acknowledging does not resolve
    audit = AdminAction.objects.get(action="alert_acknowledge")
    assert (audit.actor, audit.target_type, audit.target_id) == (neema, "alert", str(alert.pk))
    assert audit.reason == "Topping up the minter from treasury."
    listed = client.get(ALERTS).content.decode()
    assert "Topping up the minter from treasury." in listed
    assert "alert-acknowledged" in listed
    assert _ack_url(alert) not in listed  # no second acknowledgement offered
    assert _ack_url(alerts["nmb"]) in listed  # the open ones still are
    # still open: the banner counts it
    assert "3 open alerts" in client.get(reverse("admin:index")).content.decode()


def test_alerts_are_listed_open_first_then_acknowledged_then_resolved(login, neema, alerts):
    alert_acknowledge(
        alert_id=alerts["nmb"].pk,
        actor=neema,
        note="Asked NMB for the statement.",
        visible_alerts=Alert.objects.all(),
    )
    Alert.objects.filter(pk=alerts["gas"].pk).update(resolved_at=now())  # kept, resolved
    client = login(neema)

    page = client.get(ALERTS).content.decode()

    assert page.index("EXIM-ALERT-DETAIL") < page.index("NMB-ALERT-DETAIL")
    assert page.index("NMB-ALERT-DETAIL") < page.index("0.0001 ETH left")
    acknowledged = client.get(ALERTS, {"state": "acknowledged"}).content.decode()
    assert "NMB-ALERT-DETAIL" in acknowledged
    assert "EXIM-ALERT-DETAIL" not in acknowledged
    resolved = client.get(ALERTS, {"state": "resolved"}).content.decode()
    assert "0.0001 ETH left" in resolved
    assert "NMB-ALERT-DETAIL" not in resolved


def test_acknowledging_without_a_note_is_refused_in_the_services_words(login, neema, alerts):
    client = login(neema)

    response = client.post(_ack_url(alerts["gas"]), {"note": "   "}, follow=True)

    assert response.status_code == 200
    assert "Write a note to acknowledge the alert" in response.content.decode()
    alerts["gas"].refresh_from_db()
    assert alerts["gas"].acknowledged_at is None
    assert not AdminAction.objects.filter(action="alert_acknowledge").exists()


def test_a_resolved_alert_cannot_be_acknowledged(login, neema, alerts):
    alert = alerts["gas"]
    Alert.objects.filter(pk=alert.pk).update(resolved_at=now())
    client = login(neema)

    page = client.get(_ack_url(alert)).content.decode()
    assert "This alert is resolved; it needs no acknowledgement." in page
    assert 'name="note"' not in page
    response = client.post(_ack_url(alert), {"note": "Looking"})

    assert "a resolved alert needs no acknowledgement" in response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
    assert not AdminAction.objects.filter(action="alert_acknowledge").exists()
    assert _ack_url(alert) not in client.get(_detail(alert)).content.decode()


def test_an_alert_is_acknowledged_once(neema, alerts):
    other = compliance_officer(email="rehema@ntzs.test")
    alert_acknowledge(
        alert_id=alerts["gas"].pk, actor=neema, note="Mine.", visible_alerts=Alert.objects.all()
    )

    with pytest.raises(ConflictError, match="already acknowledged by neema@ntzs.test"):
        alert_acknowledge(
            alert_id=alerts["gas"].pk,
            actor=other,
            note="Mine too.",
            visible_alerts=Alert.objects.all(),
        )
    assert Alert.objects.get(pk=alerts["gas"].pk).acknowledged_by == neema


def test_someone_without_a_staff_role_may_not_acknowledge(root, amina, alerts):
    for person in (root, amina):
        with pytest.raises(PermissionRefused, match="may not acknowledge an alert"):
            alert_acknowledge(
                alert_id=alerts["gas"].pk,
                actor=person,
                note="x",
                visible_alerts=Alert.objects.all(),
            )


def test_a_superuser_without_a_role_sees_no_alert_screen(login, root, alerts):
    client = login(root)

    assert client.get(ALERTS).status_code == 403
    assert client.get(_ack_url(alerts["gas"])).status_code == 403
    assert "open alert" not in client.get(reverse("admin:index")).content.decode()


# --- Bank admins: their bank's deposits only -----------------------------------------------


def test_a_bank_admin_sees_only_the_alerts_about_their_banks_deposits(login, nmb_admin, alerts):
    client = login(nmb_admin)

    listed = client.get(ALERTS)
    banner = client.get(reverse("admin:index")).content.decode()

    assert listed.status_code == 200
    page = listed.content.decode()
    assert "NMB-ALERT-DETAIL" in page
    assert "EXIM-ALERT-DETAIL" not in page
    assert "0.0001 ETH left" not in page  # system-wide: no deposit of theirs
    assert "1 open alert" in banner
    assert _detail(alerts["nmb"]) in banner
    assert _detail(alerts["exim"]) not in banner
    assert client.get(_detail(alerts["nmb"])).status_code == 200
    assert client.get(_detail(alerts["exim"])).status_code == 404
    assert client.get(_detail(alerts["gas"])).status_code == 404
    assert client.get(_ack_url(alerts["exim"])).status_code == 404
    assert client.post(_ack_url(alerts["exim"]), {"note": "mine?"}).status_code == 404
    assert set(alerts_visible_to(user=nmb_admin)) == {alerts["nmb"]}


def test_a_bank_admin_acknowledges_an_alert_about_their_banks_deposit(login, nmb_admin, alerts):
    client = login(nmb_admin)

    response = client.post(_ack_url(alerts["nmb"]), {"note": "Checking with our branch."})

    assert response.status_code == 302
    alerts["nmb"].refresh_from_db()
    assert alerts["nmb"].acknowledged_by == nmb_admin
    with pytest.raises(NotFound):  # the service refuses another bank's alert, too
        alert_acknowledge(
            alert_id=alerts["exim"].pk,
            actor=nmb_admin,
            note="x",
            visible_alerts=alerts_visible_to(user=nmb_admin),
        )


def test_compliance_and_super_admins_see_every_alert(login, neema, salim, alerts):
    for person in (neema, salim):
        page = login(person).get(ALERTS).content.decode()
        assert "NMB-ALERT-DETAIL" in page
        assert "EXIM-ALERT-DETAIL" in page
        assert "0.0001 ETH left" in page


def test_an_alert_about_one_deposit_records_the_deposit(nmb_deposit):
    alert, opened = alert_raise(
        kind="psp reference conflict", key="TX-9", detail="d", deposit_id=nmb_deposit.pk
    )

    assert opened
    assert Alert.objects.get(pk=alert.pk).deposit_id == nmb_deposit.pk


# --- Audit log ---------------------------------------------------------------------------------


@pytest.fixture
def audit(neema, salim, nmb_deposit, exim_deposit):
    rows = {
        "neema_nmb": admin_action_record(
            actor=neema,
            action="deposit_cancel",
            target_type="deposit",
            target_id=nmb_deposit.pk,
            reason="AUDIT-NEEMA-NMB",
        ),
        "salim_exim": admin_action_record(
            actor=salim,
            action="bank_approve",
            target_type="deposit",
            target_id=exim_deposit.pk,
            reason="AUDIT-SALIM-EXIM",
        ),
        "salim_user": admin_action_record(
            actor=salim,
            action="kyc_approve",
            target_type="kyc_case",
            target_id="42",
            reason="AUDIT-SALIM-KYC",
        ),
    }
    return rows


def test_the_audit_log_filters_by_actor_action_and_target(login, neema, salim, audit, exim_deposit):
    client = login(neema)

    by_actor = client.get(AUDIT, {"actor__id__exact": str(salim.pk)}).content.decode()
    by_action = client.get(AUDIT, {"action": "deposit_cancel"}).content.decode()
    by_type = client.get(AUDIT, {"target_type": "kyc_case"}).content.decode()
    by_target = client.get(
        AUDIT, {"target_type": "deposit", "target_id": str(exim_deposit.pk)}
    ).content.decode()
    searched = client.get(AUDIT, {"q": str(exim_deposit.pk)}).content.decode()

    assert "AUDIT-SALIM-EXIM" in by_actor and "AUDIT-SALIM-KYC" in by_actor
    assert "AUDIT-NEEMA-NMB" not in by_actor
    assert "AUDIT-NEEMA-NMB" in by_action and "AUDIT-SALIM-EXIM" not in by_action
    assert "AUDIT-SALIM-KYC" in by_type and "AUDIT-SALIM-EXIM" not in by_type
    for page in (by_target, searched):
        assert "AUDIT-SALIM-EXIM" in page
        assert "AUDIT-NEEMA-NMB" not in page and "AUDIT-SALIM-KYC" not in page
    # the actor filter offers the people who appear in the log
    assert "salim@ntzs.test" in client.get(AUDIT).content.decode()


def test_a_bank_admin_reads_only_the_audit_of_their_banks_deposits(
    login, nmb_admin, neema, audit, alerts
):
    alert_acknowledge(
        alert_id=alerts["nmb"].pk,
        actor=neema,
        note="ACK-ON-NMB",
        visible_alerts=Alert.objects.all(),
    )
    alert_acknowledge(
        alert_id=alerts["exim"].pk,
        actor=neema,
        note="ACK-ON-EXIM",
        visible_alerts=Alert.objects.all(),
    )
    client = login(nmb_admin)

    page = client.get(AUDIT).content.decode()
    other = reverse("admin:core_adminaction_change", args=[audit["salim_exim"].pk])
    own = reverse("admin:core_adminaction_change", args=[audit["neema_nmb"].pk])

    assert "AUDIT-NEEMA-NMB" in page
    assert "ACK-ON-NMB" in page
    assert "AUDIT-SALIM-EXIM" not in page
    assert "AUDIT-SALIM-KYC" not in page
    assert "ACK-ON-EXIM" not in page
    assert client.get(own).status_code == 200
    assert client.get(other).status_code == 404


# --- Heartbeats, notifications, limit events --------------------------------------------------


def test_heartbeats_show_their_age_and_last_error(login, neema, settings):
    settings.BEAT_INTERVALS_S = {"minting.tasks.confirm_mints": 5, "deposits.tasks.poll": 30}
    at = now()
    TaskHeartbeat.objects.create(
        task_name="minting.tasks.confirm_mints",
        last_started=at - dt.timedelta(minutes=10),
        last_finished=at - dt.timedelta(minutes=10),
        last_error="ConnectionError: RPC refused",
        last_error_at=at - dt.timedelta(minutes=2),
    )
    TaskHeartbeat.objects.create(
        task_name="deposits.tasks.poll",
        last_started=at - dt.timedelta(seconds=5),
        last_finished=at - dt.timedelta(seconds=5),
    )
    client = login(neema)

    page = client.get(HEARTBEATS).content.decode()

    assert "10\xa0minutes ago" in page
    assert "ConnectionError: RPC refused" in page
    assert "heartbeat-failing" in page
    assert "heartbeat-ok" in page
    assert "5 s" in page  # the beat interval it is measured against


def test_a_heartbeat_older_than_twice_its_interval_is_late(login, neema, settings):
    settings.BEAT_INTERVALS_S = {"minting.tasks.confirm_mints": 5}
    TaskHeartbeat.objects.create(
        task_name="minting.tasks.confirm_mints", last_finished=now() - dt.timedelta(seconds=11)
    )

    page = login(neema).get(HEARTBEATS).content.decode()

    assert "heartbeat-late" in page


def test_payment_notifications_filter_by_outcome(login, neema):
    for outcome, order in (("applied", "ORDER-APPLIED"), ("orphan", "ORDER-ORPHAN")):
        PaymentNotification.objects.create(kind="webhook", order_id=order, outcome=outcome)
    client = login(neema)

    page = client.get(NOTIFICATIONS, {"outcome": "orphan"}).content.decode()

    assert "ORDER-ORPHAN" in page
    assert "ORDER-APPLIED" not in page


def test_limit_events_are_listed(login, neema, amina):
    LimitEvent.objects.create(
        user=amina, kind="user_daily", subject=str(amina.pk), requested_tzs=987_654, limit_tzs=1
    )

    response = login(neema).get(LIMIT_EVENTS)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert str(amina.pk) in response.content.decode()  # the subject column


def test_bank_admins_see_no_system_wide_ledger(login, nmb_admin):
    """Heartbeats, payment notifications and limit events cannot be narrowed to one bank's
    deposits as a whole (system tasks; webhooks and limits arrive before or without a
    deposit), so bank admins are not shown them; their deposits' detail pages show theirs."""
    client = login(nmb_admin)

    for url in (HEARTBEATS, NOTIFICATIONS, LIMIT_EVENTS):
        assert client.get(url).status_code == 403


def test_a_note_is_required_by_the_service_itself(neema, alerts):
    with pytest.raises(ServiceError, match="Write a note"):
        alert_acknowledge(
            alert_id=alerts["gas"].pk, actor=neema, note="", visible_alerts=Alert.objects.all()
        )
