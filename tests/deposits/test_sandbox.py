"""The ZenoPay sandbox: a faithful fake over HTTP, its phone page and its knobs (DESIGN §6).

Driven through the real client (deposits.zenopay) over the in-process transport, as the rest
of the code sees it."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from deposits.sandbox.models import SandboxKnobs, SandboxOrder
from deposits.sandbox.services import (
    SandboxError,
    sandbox_http_session,
    sandbox_order_approve,
    sandbox_order_decline,
)
from deposits.sandbox.tasks import sandbox_fire_webhook
from deposits.zenopay import (
    ZenoPayUnavailable,
    zenopay_create,
    zenopay_order_status,
    zenopay_session,
)
from tests.support.zenopay_sandbox import ScriptedAdapter, mounted

pytestmark = pytest.mark.django_db

API_KEY = "zp-test-key-7f3a9c2e5b1d4f60"
ORDER = "5b0e6a8e-3c1f-4d2b-9a57-2f1c0d9e8b71"
OTHER_ORDER = "0c3d9f1e-7a2b-4c5d-8e6f-1a2b3c4d5e6f"
WEBHOOK = f"http://testserver/api/webhooks/zenopay?t={'a' * 32}"
TASK = "deposits.sandbox.tasks.sandbox_fire_webhook"
PHONE = "0754123678"  # Vodacom: M-Pesa


@pytest.fixture(autouse=True)
def _zenopay_key(settings):
    settings.ZENOPAY_API_KEY = API_KEY


@pytest.fixture
def webhook_inbox(zenopay_sandbox, settings):
    """Records what the sandbox POSTs to APP_URL instead of letting our app answer."""
    inbox = ScriptedAdapter()
    with mounted(sandbox_http_session(), settings.APP_URL, inbox):
        yield inbox


def _create(order_id=ORDER, amount_tzs=5_000, phone=PHONE):
    return zenopay_create(
        order_id=order_id,
        buyer_email="amina@ntzs.test",
        buyer_name="Amina Juma",
        buyer_phone=phone,
        amount_tzs=amount_tzs,
        webhook_url=WEBHOOK,
    )


def _post_create(settings, body, headers=None):
    url = f"{settings.ZENOPAY_BASE_URL}{settings.ZENOPAY_CREATE_PATH}"
    data = body if isinstance(body, str) else json.dumps(body)
    return zenopay_session().post(
        url,
        data=data,
        timeout=5,
        headers={
            "Content-Type": "application/json",
            **({"x-api-key": "any"} if headers is None else headers),
        },
    )


def _valid_body(**changes):
    body = {
        "order_id": ORDER,
        "buyer_email": "amina@ntzs.test",
        "buyer_name": "Amina Juma",
        "buyer_phone": PHONE,
        "amount": 5000,
        "webhook_url": WEBHOOK,
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


# --- ZenoPay's API -----------------------------------------------------------------------------


def test_a_created_order_is_pending_until_the_phone_answers(zenopay_sandbox):
    _create()
    status = zenopay_order_status(order_id=ORDER)
    assert status.known is True
    assert (status.payment_status, status.amount_tzs, status.transid, status.http_status) == (
        "PENDING",
        5000,
        None,
        200,
    )
    assert re.fullmatch(r"\d{10}", status.reference)
    data = json.loads(status.raw_body)
    assert (data["result"], data["resultcode"], data["message"]) == (
        "SUCCESS",
        "000",
        "Order fetch successful",
    )
    assert set(data["data"][0]) == {
        "order_id",
        "creation_date",
        "amount",
        "payment_status",
        "transid",
        "channel",
        "reference",
        "msisdn",
    }
    assert data["data"][0]["amount"] == "5000"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", data["data"][0]["creation_date"])


def test_the_create_answer_is_zenopays(zenopay_sandbox, settings):
    response = _post_create(settings, _valid_body())
    assert response.status_code == 200
    assert response.json() == {
        "status": "success",
        "resultcode": "000",
        "order_id": ORDER,
        "message": "Request in progress. You will receive a callback shortly",
    }


def test_a_create_without_the_api_key_header_is_refused(zenopay_sandbox, settings):
    response = _post_create(settings, _valid_body(), headers={})
    assert response.status_code == 401
    assert response.json()["status"] == "error"
    assert zenopay_sandbox.orders() == []


def test_any_api_key_value_is_accepted(zenopay_sandbox, settings):
    assert _post_create(settings, _valid_body(), {"x-api-key": ""}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_valid_body(buyer_email=None), "buyer_email"),
        (_valid_body(amount=None), "amount"),
        (_valid_body(amount="5000"), "integer"),
        (_valid_body(amount=5000.5), "integer"),
        (_valid_body(amount=0), "greater than zero"),
        (_valid_body(buyer_phone="+255754123678"), "buyer_phone"),
        (_valid_body(buyer_phone="0222123456"), "buyer_phone"),
        (_valid_body(buyer_phone="075412367"), "buyer_phone"),
        ("{not json", "JSON"),
        ("[1, 2]", "JSON"),
    ],
    ids=[
        "no-email",
        "no-amount",
        "string-amount",
        "fractional-amount",
        "zero-amount",
        "e164-phone",
        "landline",
        "short-phone",
        "not-json",
        "json-list",
    ],
)
def test_a_bad_create_is_refused_like_zenopay_does(zenopay_sandbox, settings, body, message):
    response = _post_create(settings, body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "error"
    assert message in answer["message"]
    assert zenopay_sandbox.orders() == []


def test_an_order_id_is_accepted_once(zenopay_sandbox, settings):
    assert _post_create(settings, _valid_body()).status_code == 200
    second = _post_create(settings, _valid_body(amount=9000))
    assert (second.status_code, second.json()["status"]) == (409, "error")
    assert [order.amount_tzs for order in zenopay_sandbox.orders()] == [5000]


def test_an_unknown_order_is_not_found(zenopay_sandbox):
    status = zenopay_order_status(order_id=OTHER_ORDER)
    assert status.known is False
    assert "FAIL: Order not found" in status.reason


def test_order_status_without_the_api_key_header_is_refused(zenopay_sandbox, settings):
    url = f"{settings.ZENOPAY_BASE_URL}{settings.ZENOPAY_STATUS_PATH}"
    response = zenopay_session().get(url, params={"order_id": ORDER}, timeout=5)
    assert response.status_code == 401


# --- The phone (services) ----------------------------------------------------------------------


def test_approval_completes_the_order_and_a_task_posts_the_webhook(
    zenopay_sandbox, webhook_inbox, broker, django_capture_on_commit_callbacks
):
    _create()
    webhook_inbox.reply(200, json={"status": "received"})

    with django_capture_on_commit_callbacks(execute=True):
        sandbox_order_approve(order_id=ORDER)
    assert webhook_inbox.calls == []  # never inline: a task does it
    assert broker() == [(TASK, [ORDER])]

    status = zenopay_order_status(order_id=ORDER)
    assert (status.payment_status, status.amount_tzs, status.channel, status.msisdn) == (
        "COMPLETED",
        5000,
        "MPESA-TZ",
        "255754123678",
    )
    assert re.fullmatch(r"SBX[A-Z0-9]{10}", status.transid)

    assert sandbox_fire_webhook(ORDER) == 200  # what the worker runs
    sent = webhook_inbox.last
    assert (sent.method, sent.url) == ("POST", WEBHOOK)
    assert "x-api-key" not in sent.headers
    # ZenoPay's documented webhook: these four fields, nothing else.
    assert json.loads(sent.body) == {
        "order_id": ORDER,
        "payment_status": "COMPLETED",
        "reference": status.reference,
        "metadata": {},
    }
    order = zenopay_sandbox.order(ORDER)
    assert order.webhook_fired_at is not None
    assert order.webhook_response_status == 200


def test_a_dropped_webhook_is_never_sent(
    zenopay_sandbox, webhook_inbox, broker, django_capture_on_commit_callbacks
):
    _create()
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_order_approve(order_id=ORDER, drop_webhook=True)
    assert broker() == []
    assert sandbox_fire_webhook(ORDER) is None
    assert webhook_inbox.calls == []
    assert zenopay_order_status(order_id=ORDER).payment_status == "COMPLETED"


def test_paying_another_amount_shows_in_the_order_status(zenopay_sandbox, webhook_inbox):
    _create()
    zenopay_sandbox.knobs(webhook_with_payment_fields=True)
    webhook_inbox.reply(200)
    zenopay_sandbox.approve(ORDER, amount=7_000)
    assert zenopay_order_status(order_id=ORDER).amount_tzs == 7000
    assert json.loads(webhook_inbox.last.body)["amount"] == "7000"


def test_declining_fails_the_order_and_sends_no_webhook_by_default(
    zenopay_sandbox, webhook_inbox, broker, django_capture_on_commit_callbacks
):
    _create()
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_order_decline(order_id=ORDER)
    assert broker() == []
    assert sandbox_fire_webhook(ORDER) is None
    assert webhook_inbox.calls == []
    assert zenopay_order_status(order_id=ORDER).payment_status == "FAILED"


def test_declining_sends_a_failed_webhook_with_the_knob(
    zenopay_sandbox, webhook_inbox, broker, django_capture_on_commit_callbacks
):
    _create()
    zenopay_sandbox.knobs(webhook_on_failure=True, webhook_with_payment_fields=True)
    webhook_inbox.reply(200)
    with django_capture_on_commit_callbacks(execute=True):
        sandbox_order_decline(order_id=ORDER)
    assert broker() == [(TASK, [ORDER])]
    sandbox_fire_webhook(ORDER)
    status = zenopay_order_status(order_id=ORDER)
    assert (status.known, status.payment_status, status.transid) == (True, "FAILED", None)
    payload = json.loads(webhook_inbox.last.body)
    assert (payload["payment_status"], payload["transid"]) == ("FAILED", None)


def test_only_a_pending_push_can_be_answered(zenopay_sandbox):
    _create()
    sandbox_order_approve(order_id=ORDER, drop_webhook=True)
    with pytest.raises(SandboxError, match="already completed"):
        sandbox_order_decline(order_id=ORDER)
    with pytest.raises(SandboxError, match="already completed"):
        sandbox_order_approve(order_id=ORDER)
    with pytest.raises(SandboxError, match="no sandbox order"):
        sandbox_order_approve(order_id=OTHER_ORDER)
    with pytest.raises(SandboxError, match="above zero"):
        sandbox_order_approve(order_id=ORDER, amount_tzs=0)


def test_the_webhook_reaches_our_own_endpoint_in_process(zenopay_sandbox):
    _create()
    zenopay_sandbox.approve(ORDER)
    order = zenopay_sandbox.order(ORDER)
    assert order.webhook_response_status == 200


def test_a_webhook_that_cannot_be_delivered_is_recorded_as_such(zenopay_sandbox, webhook_inbox):
    import requests

    _create()
    webhook_inbox.fail(requests.ConnectionError)
    zenopay_sandbox.approve(ORDER)
    order = zenopay_sandbox.order(ORDER)
    assert (order.webhook_fired_at is not None, order.webhook_response_status) == (True, None)


# --- Knobs -------------------------------------------------------------------------------------


def test_the_webhook_carries_the_api_key_when_the_knob_says_so(zenopay_sandbox, webhook_inbox):
    _create()
    zenopay_sandbox.knobs(webhook_with_api_key=True)
    webhook_inbox.reply(200)
    zenopay_sandbox.approve(ORDER)
    assert webhook_inbox.last.headers["x-api-key"] == API_KEY


def test_the_webhook_carries_the_payment_fields_when_the_knob_says_so(
    zenopay_sandbox, webhook_inbox
):
    _create()
    zenopay_sandbox.knobs(webhook_with_payment_fields=True)
    webhook_inbox.reply(200)
    order = zenopay_sandbox.approve(ORDER)
    payload = json.loads(webhook_inbox.last.body)
    assert (payload["transid"], payload["channel"], payload["amount"]) == (
        order.transid,
        "MPESA-TZ",
        "5000",
    )
    assert "x-api-key" not in webhook_inbox.last.headers


def test_empty_data_for_the_next_polls(zenopay_sandbox):
    _create()
    zenopay_sandbox.knobs(empty_data_polls=2)
    first, second, third = (zenopay_order_status(order_id=ORDER) for _ in range(3))
    assert [first.known, second.known, third.known] == [False, False, True]
    assert "no payment data" in first.reason
    assert json.loads(first.raw_body)["result"] == "SUCCESS"
    assert SandboxKnobs.objects.get().empty_data_polls == 0


def test_not_found_for_the_next_polls(zenopay_sandbox):
    _create()
    zenopay_sandbox.knobs(not_found_polls=1)
    assert "Order not found" in zenopay_order_status(order_id=ORDER).reason
    assert zenopay_order_status(order_id=ORDER).payment_status == "PENDING"


def test_server_errors_for_the_next_polls(zenopay_sandbox):
    _create()
    zenopay_sandbox.knobs(server_error_polls=1)
    failed = zenopay_order_status(order_id=ORDER)
    assert (failed.known, failed.http_status) == (False, 500)
    assert zenopay_order_status(order_id=ORDER).known is True


def test_each_answer_consumes_one_knob_at_a_time(zenopay_sandbox):
    _create()
    zenopay_sandbox.knobs(server_error_polls=1, not_found_polls=1, empty_data_polls=1)
    answers = [zenopay_order_status(order_id=ORDER) for _ in range(4)]
    assert [a.http_status for a in answers] == [500, 200, 200, 200]
    assert "Order not found" in answers[1].reason
    assert "no payment data" in answers[2].reason
    assert answers[3].payment_status == "PENDING"
    knobs = SandboxKnobs.objects.get()
    assert (knobs.server_error_polls, knobs.not_found_polls, knobs.empty_data_polls) == (0, 0, 0)


def test_a_create_that_times_out_still_records_the_order(zenopay_sandbox):
    zenopay_sandbox.knobs(create_times_out=True)
    with pytest.raises(ZenoPayUnavailable, match="did not answer"):
        _create()
    assert zenopay_order_status(order_id=ORDER).payment_status == "PENDING"


def test_over_a_socket_the_timing_out_create_answers_after_the_timeout(zenopay_sandbox, settings):
    """No in-process marker: the view itself waits ZENOPAY_TIMEOUT + 1 s before answering."""
    settings.ZENOPAY_TIMEOUT = 1
    zenopay_sandbox.knobs(create_times_out=True)
    started = time.monotonic()
    response = Client().post(
        reverse("zenopay_sandbox:create"),
        data=_valid_body(),
        content_type="application/json",
        HTTP_X_API_KEY="any",
    )
    assert time.monotonic() - started >= 2
    assert response.status_code == 200
    assert "X-Sandbox-Simulate" not in response
    assert [order.order_id for order in zenopay_sandbox.orders()] == [ORDER]


def test_a_reused_transid_is_used_once(zenopay_sandbox):
    _create()
    _create(order_id=OTHER_ORDER)
    zenopay_sandbox.knobs(reuse_transid="CEJ3I3SETSN")
    zenopay_sandbox.approve(ORDER, drop_webhook=True)
    zenopay_sandbox.approve(OTHER_ORDER, drop_webhook=True)
    assert zenopay_order_status(order_id=ORDER).transid == "CEJ3I3SETSN"
    assert zenopay_order_status(order_id=OTHER_ORDER).transid.startswith("SBX")
    assert SandboxKnobs.objects.get().reuse_transid == ""


def test_negative_counters_are_refused(zenopay_sandbox):
    with pytest.raises(SandboxError):
        zenopay_sandbox.knobs(not_found_polls=-1)


# --- The phone page ----------------------------------------------------------------------------


@pytest.fixture
def phone():
    """A browser: CSRF enforced as in real life."""
    return Client(enforce_csrf_checks=True)


def _csrf(browser) -> str:
    browser.get(reverse("zenopay_sandbox:phone"))
    return browser.cookies["csrftoken"].value


def test_the_phone_page_lists_pending_pushes_with_a_masked_phone(zenopay_sandbox, phone):
    _create()
    response = phone.get(reverse("zenopay_sandbox:phone"))
    assert response.status_code == 200
    page = response.content.decode()
    assert ORDER in page
    assert "5000 TZS" in page
    assert "07•• ••• 678" in page
    assert PHONE not in page
    for action in ("approve", "decline", "approve_drop_webhook", "approve_other_amount"):
        assert f'value="{action}"' in page


@pytest.mark.parametrize(
    ("action", "amount", "state", "paid", "webhook_queued"),
    [
        ("approve", "", "completed", 5000, True),
        ("decline", "", "failed", None, False),  # ZenoPay documents COMPLETED webhooks only
        ("approve_drop_webhook", "", "completed", 5000, False),
        ("approve_other_amount", "7000", "completed", 7000, True),
    ],
)
def test_the_phone_buttons_answer_the_push(
    zenopay_sandbox,
    phone,
    broker,
    django_capture_on_commit_callbacks,
    action,
    amount,
    state,
    paid,
    webhook_queued,
):
    _create()
    token = _csrf(phone)
    with django_capture_on_commit_callbacks(execute=True):
        response = phone.post(
            reverse("zenopay_sandbox:phone_order"),
            {
                "csrfmiddlewaretoken": token,
                "order_id": ORDER,
                "action": action,
                "amount_tzs": amount,
            },
        )
    assert response.status_code == 302
    order = SandboxOrder.objects.get(order_id=ORDER)
    assert (order.state, order.paid_amount_tzs) == (state, paid)
    assert broker() == ([(TASK, [ORDER])] if webhook_queued else [])
    page = phone.get(response.url).content.decode()
    assert ORDER in page and "Waiting for the PIN" in page
    assert "No prompt is waiting" in page


def test_another_amount_needs_an_amount(zenopay_sandbox, phone):
    _create()
    response = phone.post(
        reverse("zenopay_sandbox:phone_order"),
        {
            "csrfmiddlewaretoken": _csrf(phone),
            "order_id": ORDER,
            "action": "approve_other_amount",
            "amount_tzs": "",
        },
        follow=True,
    )
    assert "Enter the amount the customer pays instead." in response.content.decode()
    assert SandboxOrder.objects.get(order_id=ORDER).state == "pending"


def test_answering_twice_shows_why_nothing_happened(zenopay_sandbox, phone):
    _create()
    token = _csrf(phone)
    url = reverse("zenopay_sandbox:phone_order")
    phone.post(url, {"csrfmiddlewaretoken": token, "order_id": ORDER, "action": "decline"})
    response = phone.post(
        url, {"csrfmiddlewaretoken": token, "order_id": ORDER, "action": "approve"}, follow=True
    )
    assert "already failed" in response.content.decode()
    assert SandboxOrder.objects.get(order_id=ORDER).state == "failed"


def test_the_phone_refuses_a_post_without_csrf(zenopay_sandbox, phone):
    _create()
    response = phone.post(
        reverse("zenopay_sandbox:phone_order"), {"order_id": ORDER, "action": "approve"}
    )
    assert response.status_code == 403
    assert SandboxOrder.objects.get(order_id=ORDER).state == "pending"


def test_the_knobs_form_sets_the_knobs(zenopay_sandbox, phone):
    response = phone.post(
        reverse("zenopay_sandbox:phone_knobs"),
        {
            "csrfmiddlewaretoken": _csrf(phone),
            "empty_data_polls": "3",
            "not_found_polls": "1",
            "server_error_polls": "0",
            "create_times_out": "on",
            "reuse_transid": " TXREUSE1 ",
            "webhook_with_api_key": "on",
            "webhook_on_failure": "on",
        },
        follow=True,
    )
    assert "Knobs saved." in response.content.decode()
    knobs = SandboxKnobs.objects.get()
    assert (
        knobs.empty_data_polls,
        knobs.not_found_polls,
        knobs.server_error_polls,
        knobs.create_times_out,
        knobs.reuse_transid,
        knobs.webhook_with_api_key,
        knobs.webhook_on_failure,
        knobs.webhook_with_payment_fields,
    ) == (3, 1, 0, True, "TXREUSE1", True, True, False)
    assert 'value="TXREUSE1"' in phone.get(reverse("zenopay_sandbox:phone")).content.decode()


def test_the_knobs_form_refuses_a_negative_counter(zenopay_sandbox, phone):
    response = phone.post(
        reverse("zenopay_sandbox:phone_knobs"),
        {
            "csrfmiddlewaretoken": _csrf(phone),
            "empty_data_polls": "-1",
            "not_found_polls": "0",
            "server_error_polls": "0",
        },
        follow=True,
    )
    assert "Knobs not changed" in response.content.decode()
    assert not SandboxKnobs.objects.exists()
