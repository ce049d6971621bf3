"""POST /api/webhooks/zenopay: stored always, refused when it must be, a hint otherwise."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import time_machine
from django.db import connection

from deposits.models import DepositRequest, PaymentNotification, WebhookRefusalCount
from deposits.services.payments import (
    REFUSAL_SAMPLES_PER_MINUTE,
    webhook_refusal_count_add,
    webhook_token,
)

URL = "/api/webhooks/zenopay"


def _post(client, payload, *, token=None, **headers):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    url = f"{URL}?t={token}" if token else URL
    return client.post(url, data=body, content_type="application/json", **headers)


def _hint(deposit, status="COMPLETED"):
    return {
        "order_id": str(deposit.pk),
        "payment_status": status,
        "reference": "R1",
        "transid": "TX1",
        "channel": "MPESA-TZ",
        "amount": str(deposit.amount_tzs),
    }


@pytest.mark.django_db
def test_a_completed_hint_for_our_deposit_schedules_a_check_now(
    client, make_deposit, broker, django_capture_on_commit_callbacks
):
    deposit = make_deposit()
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, _hint(deposit))
    assert response.status_code == 200
    assert ("deposits.tasks.check_deposit", [str(deposit.pk), "webhook"]) in broker()
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


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"payment_status": "COMPLETED"}',
        b'{"order_id": 12}',
        b"\xff\xfe",
        b"",
    ],
)
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
def test_an_order_we_never_created_is_stored_not_queried(
    client, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(
            client,
            {"order_id": "3f6c1d9e-0000-4000-8000-000000000000", "payment_status": "COMPLETED"},
        )
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
    assert PaymentNotification.objects.count() == 5  # the refusals are within the sample
    assert WebhookRefusalCount.objects.get().count == 2


@pytest.mark.django_db
def test_a_flood_of_throttled_calls_stores_a_bounded_number_of_rows(
    client, make_deposit, settings, caplog
):
    settings.ZENOPAY_WEBHOOK_MAX_PER_MIN = 2
    deposit = make_deposit()
    with caplog.at_level(logging.WARNING):
        codes = [_post(client, _hint(deposit)).status_code for _ in range(40)]
    assert codes == [200] * 2 + [429] * 38
    samples = PaymentNotification.objects.filter(outcome="rejected", http_status=429)
    assert samples.count() == REFUSAL_SAMPLES_PER_MINUTE
    assert PaymentNotification.objects.count() == 2 + REFUSAL_SAMPLES_PER_MINUTE
    counter = WebhookRefusalCount.objects.get()
    assert (counter.remote_ip, counter.reason, counter.count) == ("127.0.0.1", "rate", 38)
    assert caplog.text.count("ZenoPay webhook rejected") == REFUSAL_SAMPLES_PER_MINUTE + 1


@pytest.mark.django_db
def test_an_anonymous_flood_of_oversized_bodies_is_counted_not_stored(client, settings):
    body = b'{"order_id": "x", "pad": "' + b"x" * (17 * 1024) + b'"}'
    codes = [_post(client, body).status_code for _ in range(12)]
    assert codes == [413] * 12
    assert PaymentNotification.objects.count() == REFUSAL_SAMPLES_PER_MINUTE
    assert WebhookRefusalCount.objects.get(reason="size").count == 12


@pytest.mark.django_db
def test_behind_one_trusted_proxy_two_clients_have_separate_allowances(
    client, make_deposit, settings
):
    settings.TRUSTED_PROXY_HOPS = 1
    settings.ZENOPAY_WEBHOOK_MAX_PER_MIN = 2
    deposit = make_deposit()

    def call(forwarded_for):
        return _post(
            client, _hint(deposit), REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded_for
        ).status_code

    # The client cannot choose its address by prepending entries: the proxy's is used.
    assert [call("6.6.6.6, 198.51.100.7") for _ in range(3)] == [200, 200, 429]
    assert [call("198.51.100.8") for _ in range(2)] == [200, 200]
    stored = set(PaymentNotification.objects.values_list("remote_ip", flat=True))
    assert stored == {"198.51.100.7", "198.51.100.8"}
    assert WebhookRefusalCount.objects.get().remote_ip == "198.51.100.7"


@pytest.mark.django_db
def test_a_tokened_call_over_the_rate_is_still_accepted_and_stored(client, make_deposit, settings):
    settings.ZENOPAY_WEBHOOK_MAX_PER_MIN = 1
    deposit = make_deposit()
    token = webhook_token(str(deposit.pk))
    assert [_post(client, _hint(deposit)).status_code for _ in range(2)] == [200, 429]
    codes = [_post(client, _hint(deposit), token=token).status_code for _ in range(10)]
    assert codes == [200] * 10
    assert PaymentNotification.objects.filter(authenticated=True, http_status=200).count() == 10
    # A wrong token is anonymous, and throttled.
    assert _post(client, _hint(deposit), token="f" * 32).status_code == 429


@pytest.mark.django_db
def test_an_allowlisted_address_is_never_throttled(client, make_deposit, settings):
    settings.ZENOPAY_WEBHOOK_ALLOWED_IPS = ["10.9.9.9"]
    settings.ZENOPAY_WEBHOOK_MAX_PER_MIN = 1
    deposit = make_deposit()
    codes = [_post(client, _hint(deposit), REMOTE_ADDR="10.9.9.9").status_code for _ in range(8)]
    assert codes == [200] * 8
    assert PaymentNotification.objects.filter(http_status=200).count() == 8
    assert not WebhookRefusalCount.objects.exists()


# --- Hostile values: stored faithfully, never a 500 ---------------------------------------------


@pytest.mark.django_db
def test_a_nul_byte_in_a_field_is_stored_escaped_not_a_500(client, make_deposit):
    deposit = make_deposit()
    body = json.dumps(
        {**_hint(deposit), "payment_status": "COMPLETED\u0000", "channel": "M\u0000PESA"}
    )
    response = _post(client, body)
    assert response.status_code == 200
    note = PaymentNotification.objects.get()
    assert note.deposit_id == deposit.pk and note.body == body  # JSON escapes are plain text
    assert note.payment_status == ""  # a status holding NUL is not stored as a status
    assert "payment_status of 10 characters not stored" in note.outcome_note


@pytest.mark.django_db
def test_a_raw_nul_and_invalid_utf8_are_kept_escaped_in_the_stored_body(client):
    response = _post(client, b'{"order_id": "a\x00b", "junk": "\xff"}')
    assert response.status_code == 400
    note = PaymentNotification.objects.get()
    assert note.body == '{"order_id": "a\\x00b", "junk": "\\xff"}'


@pytest.mark.django_db
def test_a_non_ascii_url_token_is_not_authenticated_and_not_an_error(client, make_deposit):
    deposit = make_deposit()
    for token in ("ñ" * 32, "\u0000" * 32, "x" * 5000):
        assert _post(client, _hint(deposit), token=token).status_code == 200
    assert PaymentNotification.objects.filter(authenticated=False).count() == 3


@pytest.mark.django_db
def test_an_overlong_order_id_is_stored_empty_with_the_whole_body(
    client, broker, django_capture_on_commit_callbacks
):
    body = json.dumps({"order_id": "9" * 500, "payment_status": "COMPLETED"})
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, body).status_code == 200
    note = PaymentNotification.objects.get()
    assert (note.order_id, note.outcome, note.body) == ("", "ignored", body)
    assert "order_id of 500 characters not stored in its column (100)" in note.outcome_note
    assert broker() == []


@pytest.mark.django_db
def test_a_body_nested_deeper_than_any_payload_is_a_400(client):
    body = '{"order_id": "x", "metadata": ' + "[" * 8000 + "]" * 8000 + "}"
    assert _post(client, body).status_code == 400
    assert PaymentNotification.objects.get().outcome == "rejected"


@pytest.mark.django_db
def test_an_address_that_is_not_an_ip_is_stored_as_unknown(client, make_deposit, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    deposit = make_deposit()
    response = _post(
        client, _hint(deposit), REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-address\x00"
    )
    assert response.status_code == 200
    assert PaymentNotification.objects.get().remote_ip == "10.0.0.2"  # the proxy, never garbage


@pytest.mark.django_db
def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405
    assert DepositRequest.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_refusals_count_each_call_once():
    barrier = threading.Barrier(16)
    counts: list[int] = []

    def refuse():
        barrier.wait()
        try:
            counts.append(webhook_refusal_count_add(remote_ip="203.0.113.9", reason="rate"))
        finally:
            connection.close()

    with time_machine.travel("2026-11-02 08:00:30Z", tick=False):  # one minute for everyone
        threads = [threading.Thread(target=refuse) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Each call read back its own count, so exactly the first five are sampled.
    assert sorted(counts) == list(range(1, 17))
    assert WebhookRefusalCount.objects.get().count == 16
