"""POST /api/webhooks/zenopay: stored always, refused when it must be, a hint otherwise."""

from __future__ import annotations

import json
import logging

import pytest

from deposits.models import DepositRequest, PaymentNotification
from deposits.services.payments import webhook_token

URL = "/api/webhooks/zenopay"


def _post(client, payload, *, token=None, **headers):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    url = f"{URL}?t={token}" if token else URL
    return client.post(url, data=body, content_type="application/json", **headers)


def _hint(deposit, status="COMPLETED"):
    return {"order_id": str(deposit.pk), "payment_status": status, "reference": "R1",
            "transid": "TX1", "channel": "MPESA-TZ", "amount": str(deposit.amount_tzs)}


@pytest.mark.django_db
def test_a_completed_hint_for_our_deposit_schedules_a_check_now(client, make_deposit, broker,
                                                                 django_capture_on_commit_callbacks):
    deposit = make_deposit()
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, _hint(deposit))
    assert response.status_code == 200
    assert ("deposits.tasks.check_deposit", [str(deposit.pk)]) in broker()
    deposit.refresh_from_db()
    assert deposit.status == "submitted"  # a hint never advances a deposit by itself
    note = PaymentNotification.objects.get(kind="webhook")
    assert (note.deposit_id, note.outcome, note.authenticated) == (deposit.pk, "pending", False)


@pytest.mark.django_db
def test_a_valid_url_token_marks_the_hint_authenticated(client, make_deposit):
    deposit = make_deposit()
    assert _post(client, _hint(deposit), token=webhook_token(str(deposit.pk))).status_code == 200
    assert PaymentNotification.objects.get(kind="webhook").authenticated is True
    _post(client, _hint(deposit), token="0" * 32)
    assert PaymentNotification.objects.filter(authenticated=False).count() == 1


@pytest.mark.django_db
def test_a_wrong_api_key_is_401_and_changes_nothing(client, make_deposit, settings, caplog):
    settings.ZENOPAY_API_KEY = "the-real-key"
    deposit = make_deposit()
    with caplog.at_level(logging.WARNING):
        response = _post(client, _hint(deposit), HTTP_X_API_KEY="a-forged-key")
    assert response.status_code == 401
    assert response.json()["status"] == "rejected"
    note = PaymentNotification.objects.get()
    assert (note.outcome, note.key_status, note.http_status) == ("rejected", "invalid", 401)
    assert note.headers["x-api-key"] == "[present]"
    assert "ZenoPay webhook rejected" in caplog.text
    assert "a-forged-key" not in caplog.text and "the-real-key" not in caplog.text
    deposit.refresh_from_db()
    assert deposit.next_poll_at != deposit.created_at and deposit.status == "submitted"


@pytest.mark.django_db
def test_the_right_api_key_is_accepted(client, make_deposit, settings):
    settings.ZENOPAY_API_KEY = "the-real-key"
    deposit = make_deposit()
    assert _post(client, _hint(deposit), HTTP_X_API_KEY="the-real-key").status_code == 200
    assert PaymentNotification.objects.get().key_status == "valid"


@pytest.mark.django_db
def test_a_missing_key_is_refused_only_when_required(client, make_deposit, settings):
    deposit = make_deposit()
    assert _post(client, _hint(deposit)).status_code == 200
    settings.ZENOPAY_WEBHOOK_REQUIRE_KEY = True
    assert _post(client, _hint(deposit)).status_code == 401


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"payment_status": "COMPLETED"}',
                                  b'{"order_id": 12}', b"\xff\xfe", b""])
@pytest.mark.django_db
def test_a_malformed_body_is_400_and_still_recorded(client, body):
    response = _post(client, body)
    assert response.status_code == 400
    note = PaymentNotification.objects.get()
    assert (note.outcome, note.http_status) == ("rejected", 400)


@pytest.mark.django_db
def test_a_body_over_16_kb_is_413_and_stored_truncated(client, make_deposit):
    deposit = make_deposit()
    payload = {**_hint(deposit), "metadata": {"pad": "x" * 20_000}}
    response = _post(client, payload)
    assert response.status_code == 413
    note = PaymentNotification.objects.get()
    assert note.outcome == "rejected" and len(note.body) <= 16 * 1024


@pytest.mark.django_db
def test_an_order_we_never_created_is_stored_not_queried(client, broker,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, {"order_id": "3f6c1d9e-0000-4000-8000-000000000000",
                                  "payment_status": "COMPLETED"})
    assert response.status_code == 200
    assert PaymentNotification.objects.get().outcome == "ignored"
    assert broker() == []


@pytest.mark.django_db
def test_an_ip_outside_the_allowlist_is_403(client, make_deposit, settings):
    settings.ZENOPAY_WEBHOOK_ALLOWED_IPS = ["10.9.9.9"]
    deposit = make_deposit()
    assert _post(client, _hint(deposit)).status_code == 403
    assert _post(client, _hint(deposit), REMOTE_ADDR="10.9.9.9").status_code == 200


@pytest.mark.django_db
def test_a_flood_from_one_ip_is_throttled(client, make_deposit, settings):
    settings.ZENOPAY_WEBHOOK_MAX_PER_MIN = 3
    deposit = make_deposit()
    codes = [_post(client, _hint(deposit)).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert PaymentNotification.objects.count() == 5  # every call is stored


@pytest.mark.django_db
def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405
    assert DepositRequest.objects.count() == 0
