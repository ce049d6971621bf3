"""deposits.zenopay: what we send to ZenoPay and how we read what it answers (DESIGN §6).

The scripted answers below follow ZenoPay's recorded shapes; the happy paths go through the
sandbox over (in-process) HTTP."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from deposits.zenopay import (
    RAW_BODY_CAP,
    CreateAccepted,
    ZenoPayError,
    ZenoPayRefused,
    ZenoPayUnavailable,
    zenopay_create,
    zenopay_order_status,
)

API_KEY = "zp-test-key-7f3a9c2e5b1d4f60"
ORDER = "5b0e6a8e-3c1f-4d2b-9a57-2f1c0d9e8b71"
WEBHOOK = f"http://testserver/api/webhooks/zenopay?t={'a' * 32}"


@pytest.fixture(autouse=True)
def _zenopay_key(settings):
    settings.ZENOPAY_API_KEY = API_KEY
    settings.ZENOPAY_TIMEOUT = 45


def _create(**overrides) -> CreateAccepted:
    args = {
        "order_id": ORDER,
        "buyer_email": "amina@ntzs.test",
        "buyer_name": "Amina Juma",
        "buyer_phone": "0712345678",
        "amount_tzs": 5_000,
        "webhook_url": WEBHOOK,
    }
    return zenopay_create(**{**args, **overrides})


def _status_answer(
    *, payment_status="COMPLETED", amount="5000", transid="CEJ3I3SETSN", result="SUCCESS", **entry
) -> dict:
    return {
        "reference": "0936183435",
        "resultcode": "000",
        "result": result,
        "message": "Order fetch successful",
        "data": [
            {
                "order_id": ORDER,
                "creation_date": "2025-05-19 08:40:33",
                "amount": amount,
                "payment_status": payment_status,
                "transid": transid,
                "channel": "MPESA-TZ",
                "reference": "0936183435",
                "msisdn": "255712345678",
                **entry,
            }
        ],
    }


# --- Create -----------------------------------------------------------------------------------


def test_create_posts_the_documented_body_with_the_api_key(zenopay_fake, settings):
    zenopay_fake.reply(
        json={
            "status": "success",
            "resultcode": "000",
            "order_id": ORDER,
            "message": "Request in progress. You will receive a callback shortly",
        }
    )
    _create()
    sent = zenopay_fake.last
    assert sent.method == "POST"
    assert sent.url == f"{settings.ZENOPAY_BASE_URL}{settings.ZENOPAY_CREATE_PATH}"
    assert sent.headers["x-api-key"] == API_KEY
    assert json.loads(sent.body) == {
        "order_id": ORDER,
        "buyer_email": "amina@ntzs.test",
        "buyer_name": "Amina Juma",
        "buyer_phone": "0712345678",
        "amount": 5000,
        "webhook_url": WEBHOOK,
    }


@pytest.mark.django_db
def test_create_accepted_by_zenopay_returns_its_answer(zenopay_sandbox):
    accepted = _create()
    assert accepted == CreateAccepted(
        order_id=ORDER,
        resultcode="000",
        message="Request in progress. You will receive a callback shortly",
        raw={
            "status": "success",
            "resultcode": "000",
            "order_id": ORDER,
            "message": "Request in progress. You will receive a callback shortly",
        },
    )
    assert [order.order_id for order in zenopay_sandbox.orders()] == [ORDER]


def test_create_joins_base_url_and_path_whatever_the_slashes(request, settings):
    settings.ZENOPAY_BASE_URL = "https://zenoapi.example/api/"
    fake = request.getfixturevalue("zenopay_fake")
    fake.reply(json={"status": "success", "resultcode": "000", "order_id": ORDER})
    _create()
    assert fake.last.url == "https://zenoapi.example/api/payments/mobile_money_tanzania"


def test_an_error_status_is_a_refusal_with_message_and_resultcode(zenopay_fake):
    zenopay_fake.reply(
        json={"status": "error", "resultcode": "015", "message": "Invalid buyer phone number"}
    )
    with pytest.raises(ZenoPayRefused) as refused:
        _create()
    assert refused.value.message == "Invalid buyer phone number"
    assert refused.value.resultcode == "015"
    assert str(refused.value) == "Invalid buyer phone number"
    assert isinstance(refused.value, ZenoPayError)


@pytest.mark.django_db
def test_a_4xx_json_answer_is_a_refusal(zenopay_sandbox):
    with pytest.raises(ZenoPayRefused) as refused:
        _create(buyer_phone="0212345678")  # a landline: the sandbox refuses it like ZenoPay
    assert refused.value.http_status == 400
    assert "buyer_phone" in refused.value.message
    assert zenopay_sandbox.orders() == []


@pytest.mark.parametrize(
    ("status", "body", "headers", "why"),
    [
        (502, "<html>Bad Gateway</html>", {}, "HTTP 502"),
        (500, json.dumps({"status": "error", "message": "boom"}), {}, "HTTP 500"),
        (200, "<html>maintenance</html>", {}, "not JSON"),
        (200, json.dumps(["success"]), {}, "unexpected shape"),
        (200, json.dumps({"status": "queued", "resultcode": "000"}), {}, "no success or error"),
        (200, json.dumps({"status": "success", "order_id": "someone-else"}), {}, "another order"),
        (404, "<html>Not Found</html>", {}, "not JSON"),
        (429, json.dumps({"status": "error", "message": "Too many requests"}), {}, "HTTP 429"),
        (302, "", {"Location": "https://elsewhere.example/"}, "HTTP 302"),
    ],
    ids=[
        "502",
        "500-json",
        "html-200",
        "json-list",
        "odd-status",
        "other-order",
        "html-404",
        "429",
        "redirect",
    ],
)
def test_an_answer_we_cannot_read_leaves_the_create_outcome_unknown(
    zenopay_fake, status, body, headers, why
):
    zenopay_fake.reply(status, body=body, headers=headers)
    with pytest.raises(ZenoPayUnavailable, match=why):
        _create()
    assert len(zenopay_fake.calls) == 1  # never retried, redirects never followed


@pytest.mark.parametrize(
    ("exception", "why"),
    [
        (requests.ReadTimeout, "did not answer within 45 s"),
        (requests.ConnectTimeout, "did not answer within 45 s"),
        (requests.ConnectionError, "could not reach ZenoPay at testserver"),
        (requests.exceptions.SSLError, "could not reach ZenoPay"),
        (requests.exceptions.ChunkedEncodingError, "failed"),
    ],
)
def test_a_transport_failure_leaves_the_create_outcome_unknown(zenopay_fake, exception, why):
    zenopay_fake.fail(exception)
    with pytest.raises(ZenoPayUnavailable, match=why):
        _create()
    assert len(zenopay_fake.calls) == 1


def test_create_uses_the_configured_timeout(zenopay_fake, settings):
    seen = {}
    original = zenopay_fake.send

    def send(request, **kwargs):
        seen["timeout"] = kwargs.get("timeout")
        return original(request, **kwargs)

    zenopay_fake.send = send
    zenopay_fake.reply(json={"status": "success", "resultcode": "000", "order_id": ORDER})
    settings.ZENOPAY_TIMEOUT = 70
    _create()
    assert seen["timeout"] == (10, 70)


def test_a_fractional_or_zero_amount_is_never_sent(zenopay_fake):
    for amount in (0, -5, 1000.5, "1000", True):
        with pytest.raises(ValueError):
            _create(amount_tzs=amount)
    assert zenopay_fake.calls == []


# --- Order status -----------------------------------------------------------------------------


def test_order_status_asks_with_a_get_the_order_id_and_the_api_key(zenopay_fake, settings):
    zenopay_fake.reply(json=_status_answer())
    zenopay_order_status(order_id=ORDER)
    sent = zenopay_fake.last
    url = urlsplit(sent.url)
    assert sent.method == "GET"
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        f"{settings.ZENOPAY_BASE_URL}{settings.ZENOPAY_STATUS_PATH}"
    )
    assert parse_qs(url.query) == {"order_id": [ORDER]}
    assert sent.headers["x-api-key"] == API_KEY


def test_a_completed_payment_is_read_from_data(zenopay_fake):
    answer = _status_answer()
    zenopay_fake.reply(json=answer)
    status = zenopay_order_status(order_id=ORDER)
    assert status.known is True
    assert (
        status.payment_status,
        status.amount_tzs,
        status.transid,
        status.reference,
        status.channel,
        status.msisdn,
    ) == ("COMPLETED", 5000, "CEJ3I3SETSN", "0936183435", "MPESA-TZ", "255712345678")
    assert (status.order_id, status.http_status, status.reason) == (ORDER, 200, "")
    assert json.loads(status.raw_body) == answer


@pytest.mark.parametrize("payment_status", ["PENDING", "FAILED", "CANCELLED", "REVERSED"])
def test_other_payment_statuses_are_read_as_they_are(zenopay_fake, payment_status):
    zenopay_fake.reply(json=_status_answer(payment_status=payment_status, transid=None))
    status = zenopay_order_status(order_id=ORDER)
    assert (status.known, status.payment_status) == (True, payment_status)


def test_the_payment_status_is_upper_cased(zenopay_fake):
    zenopay_fake.reply(json=_status_answer(payment_status=" completed "))
    assert zenopay_order_status(order_id=ORDER).payment_status == "COMPLETED"


@pytest.mark.parametrize(
    ("result", "payment_status"),
    [
        ("FAILED", "COMPLETED"),
        ("SUCCESS", "FAILED"),
        ("SUCCESS", "PENDING"),
    ],
)
def test_the_payment_status_of_data_wins_over_the_top_level_result(
    zenopay_fake, result, payment_status
):
    zenopay_fake.reply(json=_status_answer(result=result, payment_status=payment_status))
    status = zenopay_order_status(order_id=ORDER)
    assert (status.known, status.payment_status) == (True, payment_status)


def test_without_a_transid_the_zenopay_reference_is_there_to_fall_back_on(zenopay_fake):
    zenopay_fake.reply(json=_status_answer(transid=None))
    status = zenopay_order_status(order_id=ORDER)
    assert (status.transid, status.reference) == (None, "0936183435")
    assert (status.transid or status.reference) == "0936183435"


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("1000", 1000), ("1000.00", 1000), (" 2500 ", 2500), (1000, 1000), (None, None)],
)
def test_the_amount_is_read_as_whole_shillings(zenopay_fake, amount, expected):
    zenopay_fake.reply(json=_status_answer(amount=amount))
    status = zenopay_order_status(order_id=ORDER)
    assert status.known is True
    assert status.amount_tzs == expected


def test_a_json_number_with_decimals_is_never_read_through_a_float(zenopay_fake):
    zenopay_fake.reply(
        body=json.dumps(_status_answer()).replace('"5000"', "5000.00"),
        headers={"Content-Type": "application/json"},
    )
    assert zenopay_order_status(order_id=ORDER).amount_tzs == 5000


def _scripted(fake, kind, payload):
    if kind == "json":
        fake.reply(json=payload)
    elif kind == "raw":
        fake.reply(payload[0], body=payload[1])
    else:
        fake.fail(payload)


@pytest.mark.parametrize(
    ("kind", "payload", "why"),
    [
        ("json", {**_status_answer(), "data": []}, "no payment data"),
        (
            "json",
            {"result": "SUCCESS", "resultcode": "000", "message": "Order fetch successful"},
            "no payment data",
        ),
        (
            "json",
            {"result": "FAIL", "resultcode": "404", "message": "Order not found"},
            "FAIL: Order not found",
        ),
        (
            "json",
            {"result": "FAILED", "resultcode": "999", "message": "Order not found", "data": []},
            "FAILED: Order not found",
        ),
        (
            "raw",
            (404, json.dumps({"result": "FAIL", "message": "Order not found"})),
            "HTTP 404: Order not found",
        ),
        ("raw", (500, "<h1>Server Error</h1>"), "HTTP 500"),
        ("raw", (503, json.dumps(_status_answer())), "HTTP 503"),
        ("raw", (200, "<html>Please wait</html>"), "not JSON"),
        ("raw", (200, '{"data": [NaN]}'), "not JSON"),
        ("json", ["SUCCESS"], "unexpected shape"),
        ("json", {**_status_answer(), "data": "COMPLETED"}, "unexpected shape"),
        (
            "json",
            _status_answer(amount="1000.50", payment_status="PENDING"),
            "fraction of a shilling",
        ),
        ("json", _status_answer(amount="1,000", payment_status="PENDING"), "not a whole number"),
        ("json", _status_answer(amount="abc", payment_status="FAILED"), "not a whole number"),
        ("json", _status_answer(amount=True, payment_status="PENDING"), "not a number"),
        ("json", _status_answer(payment_status="COMPLETED" * 4), "not a payment status"),
        ("json", _status_answer(payment_status="COMPLETED\x00"), "not a payment status"),
        ("json", _status_answer(order_id="another-order"), "another order"),
        ("json", _status_answer(payment_status=None), "no payment_status"),
        ("fail", requests.ReadTimeout, "did not answer within 45 s"),
        ("fail", requests.ConnectionError, "could not reach ZenoPay"),
    ],
    ids=[
        "empty-data",
        "missing-data",
        "fail-not-found",
        "failed-not-found",
        "404-json",
        "500",
        "503-with-data",
        "html-200",
        "nan",
        "json-list",
        "data-a-string",
        "fractional-amount",
        "comma-amount",
        "garbage-amount",
        "bool-amount",
        "overlong-status",
        "nul-status",
        "other-order",
        "no-payment-status",
        "timeout",
        "connection-error",
    ],
)
def test_an_answer_that_says_nothing_definite_is_unknown(zenopay_fake, kind, payload, why):
    _scripted(zenopay_fake, kind, payload)
    status = zenopay_order_status(order_id=ORDER)
    assert status.known is False
    assert why in status.reason
    assert (status.payment_status, status.amount_tzs, status.transid) == (None, None, None)
    assert status.order_id == ORDER


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ({"amount": "1000.50"}, "fraction of a shilling"),
        ({"amount": "abc"}, "not a whole number"),
        ({"amount": "\u0665\u0660\u0660\u0660"}, "not a whole number"),  # Arabic-Indic 5000
        ({"amount": "9" * 5000}, "5000 digits"),
        ({"transid": {"nested": ["deep"]}}, "transid is a dict"),
        ({"msisdn": ["255712345678"]}, "msisdn is a list"),
    ],
    ids=["fraction", "garbage", "non-ascii-digits", "huge", "object-transid", "list-msisdn"],
)
def test_a_completed_answer_with_an_unreadable_field_stays_known_and_says_why(
    zenopay_fake, entry, why
):
    zenopay_fake.reply(json=_status_answer(**entry))
    status = zenopay_order_status(order_id=ORDER)
    assert (status.known, status.payment_status) == (True, "COMPLETED")
    assert why in status.unreadable


def test_identifiers_are_never_clipped_and_bodies_are_stored_escaped(zenopay_fake):
    transid = "T" * 300
    zenopay_fake.reply(
        body=json.dumps(_status_answer(transid=transid, msisdn="2557" * 10)).encode() + b"\xff\x00",
        headers={"Content-Type": "application/json"},
    )
    zenopay_fake.reply(json=_status_answer(transid=transid, msisdn="2557" * 10))
    garbled = zenopay_order_status(order_id=ORDER)
    assert garbled.known is False  # not JSON with the stray bytes
    assert garbled.raw_body.endswith("\\xff\\x00") and "\x00" not in garbled.raw_body
    status = zenopay_order_status(order_id=ORDER)
    assert (status.transid, status.msisdn, status.unreadable) == (transid, "2557" * 10, "")


def test_an_answer_nested_too_deeply_is_unknown_not_an_error(zenopay_fake):
    zenopay_fake.reply(
        200, body="[" * 100_000 + "]" * 100_000, headers={"Content-Type": "application/json"}
    )
    status = zenopay_order_status(order_id=ORDER)
    assert (status.known, status.http_status) == (False, 200)
    assert "not JSON" in status.reason


def test_an_unknown_answer_keeps_its_body_and_http_status(zenopay_fake):
    zenopay_fake.reply(500, body="<h1>Server Error</h1>")
    status = zenopay_order_status(order_id=ORDER)
    assert (status.http_status, status.raw_body) == (500, "<h1>Server Error</h1>")


def test_a_timeout_has_no_body_and_no_http_status(zenopay_fake):
    zenopay_fake.fail(requests.ReadTimeout)
    status = zenopay_order_status(order_id=ORDER)
    assert (status.http_status, status.raw_body) == (None, "")


def test_the_raw_body_is_capped_at_16_kb(zenopay_fake):
    answer = _status_answer()
    answer["padding"] = "x" * (RAW_BODY_CAP * 2)
    zenopay_fake.reply(json=answer)
    status = zenopay_order_status(order_id=ORDER)
    assert status.known is True
    assert len(status.raw_body) == RAW_BODY_CAP


# --- The API key stays secret ------------------------------------------------------------------


def test_the_api_key_never_appears_in_logs_or_errors(zenopay_fake, caplog):
    caplog.set_level(logging.DEBUG)
    echoed = {"status": "error", "resultcode": "401", "message": f"Invalid API key {API_KEY}"}
    zenopay_fake.reply(401, json=echoed)
    zenopay_fake.fail(requests.ConnectionError(f"refused; headers had {API_KEY}"))
    zenopay_fake.reply(401, json={"result": "FAIL", "message": f"Invalid API key {API_KEY}"})
    zenopay_fake.reply(200, json=_status_answer())

    with pytest.raises(ZenoPayRefused) as refused:
        _create()
    with pytest.raises(ZenoPayUnavailable) as unavailable:
        _create()
    unknown = zenopay_order_status(order_id=ORDER)
    known = zenopay_order_status(order_id=ORDER)

    assert known.known is True
    texts = [
        str(refused.value),
        refused.value.message,
        str(unavailable.value),
        unknown.reason,
        unknown.raw_body,
        caplog.text,
        *(r.getMessage() for r in caplog.records),
    ]
    assert all(API_KEY not in text for text in texts)
    assert "Invalid API key [redacted]" in refused.value.message
    assert any("ZenoPay create" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "deposits.zenopay")
