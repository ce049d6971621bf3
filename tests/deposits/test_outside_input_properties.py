"""Property-based: hostile outside values through the webhook, the order-status parser and the
deposit form (DESIGN §14 invariant 13). Never a 500, every webhook call stored, every paid
deposit confirmed or held, every second payment an orphan (or, unreadable, an alert), and two
references that differ only past the column's width never merge.

Examples share the test's transaction, so each one makes its own deposits and asserts only on
the rows it created."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from urllib.parse import quote_from_bytes

import pytest
import time_machine
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.clock import now
from core.models import Alert
from core.text import text_identifier_fits
from deposits.models import (
    DepositRequest,
    OrphanPayment,
    PaymentNotification,
    WebhookRefusalCount,
)
from deposits.services.payments import deposit_check, webhook_token

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
WEBHOOK = "/api/webhooks/zenopay"
PHONE = "255712345678"
DEEP = "__deep_nesting__"  # 40 levels: deep, yet within what any JSON reader here accepts
ABSURD = "__absurd_nesting__"  # 5,000 levels: refused as unreadable, never a crash
HUGE = "__huge_number__"
_amounts = itertools.count(1_000)

# --- Strategies ---------------------------------------------------------------------------------

any_char_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
hostile_text = st.one_of(
    st.text(max_size=30),
    any_char_text,  # lone surrogates, NUL and every control character included
    st.sampled_from(["\x00", "COMPLETED\x00", "ñ", "٥٠٠٠", "²", "𝟓𝟎𝟎𝟎", " ", "\u202e"]),
    st.text(min_size=90, max_size=400),  # around and past the columns (32, 40, 100)
    st.builds(lambda n: "9" * n, st.integers(95, 120)),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text
)
nested = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
hostile_value = st.one_of(hostile_text, scalars, nested, st.just(DEEP), st.just(HUGE))
unreadable_value = st.one_of(hostile_value, st.just(ABSURD))


def _render(payload) -> bytes:
    """JSON text, with placeholders turned into what json.dumps cannot write itself: deep
    nesting and a number of 5,000 digits."""
    text = json.dumps(payload)
    text = text.replace(json.dumps(DEEP), '{"a": [' * 20 + "1" + "]}" * 20)
    text = text.replace(json.dumps(ABSURD), "[" * 5_000 + "]" * 5_000)
    return text.replace(json.dumps(HUGE), "7" * 5_000).encode()


@pytest.fixture
def fresh_deposit(make_deposit, settings):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 10**6
    settings.USER_DAILY_LIMIT_TZS = 10**12
    settings.USER_MONTHLY_LIMIT_TZS = 10**12
    settings.MAX_PAYING_PHONES_PER_30_DAYS = 10**6

    def make(**kwargs) -> DepositRequest:
        return make_deposit(amount=next(_amounts), **kwargs)

    return make


# --- The webhook ----------------------------------------------------------------------------------


@st.composite
def webhook_calls(draw):
    kind = draw(st.sampled_from(["bytes", "json", "json-ours"]))
    if kind == "bytes":
        body = draw(st.one_of(st.binary(max_size=300), st.binary(min_size=16_380, max_size=16_400)))
    else:
        payload = draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "order_id",
                        "payment_status",
                        "reference",
                        "transid",
                        "channel",
                        "amount",
                        "metadata",
                        "msisdn",
                    ]
                ),
                unreadable_value,
                max_size=8,
            )
        )
        if kind == "json-ours":
            payload["order_id"] = "{ours}"
        body = _render(payload)
    token = draw(st.one_of(st.none(), st.just("{valid}"), st.text(max_size=70)))
    forwarded = draw(st.one_of(st.none(), st.text(max_size=60), st.ip_addresses().map(str)))
    agent = draw(st.text(max_size=50))
    return body, token, forwarded, agent


@pytest.mark.django_db
@PROPERTY
@given(call=webhook_calls())
def test_every_webhook_call_is_stored_and_never_a_500(call, client, fresh_deposit, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    settings.ZENOPAY_WEBHOOK_MAX_PER_MIN = 10**6  # the throttle has its own tests
    body, token, forwarded, agent = call
    deposit = fresh_deposit()
    body = body.replace(b"{ours}", str(deposit.pk).encode())
    if token == "{valid}":
        token = webhook_token(str(deposit.pk))
    before = set(PaymentNotification.objects.values_list("pk", flat=True))
    refused_before = sum(WebhookRefusalCount.objects.values_list("count", flat=True))
    headers = {"HTTP_USER_AGENT": agent.encode("utf-8", "backslashreplace").decode("latin-1")}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded.encode("utf-8", "backslashreplace").decode(
            "latin-1"
        )
    query = f"?t={quote_from_bytes(token.encode('utf-8', 'surrogatepass'))}" if token else ""
    response = client.post(WEBHOOK + query, data=body, content_type="application/json", **headers)
    assert response.status_code in (200, 400, 413)
    new = list(PaymentNotification.objects.exclude(pk__in=before))
    refused = sum(WebhookRefusalCount.objects.values_list("count", flat=True)) - refused_before
    if response.status_code == 413:  # anonymous and oversized: counted, and maybe a sample
        assert refused == 1 and len(new) <= 1
    else:
        assert len(new) == 1 and refused == 0
    for stored in new:
        assert "\x00" not in stored.body and len(stored.order_id) <= 100
        if response.status_code == 200 and b'"{ours}"' in call[0]:
            assert stored.deposit_id == deposit.pk  # our order id, even among hostile fields


# --- The order-status answer ---------------------------------------------------------------------


def _answer(deposit, entry: dict) -> bytes:
    return _render(
        {
            "result": "SUCCESS",
            "resultcode": "000",
            "message": "ok",
            "data": [
                {"order_id": str(deposit.pk), "creation_date": "2026-11-02 08:00:00", **entry}
            ],
        }
    )


present_text = hostile_text.filter(lambda value: value.strip() != "")
present = st.one_of(
    present_text,
    st.integers(),
    st.booleans(),
    nested.filter(
        lambda value: value is not None and not (isinstance(value, str) and not value.strip())
    ),
    st.just(HUGE),
)


@st.composite
def paid_entries(draw, amount_tzs: int):
    """A COMPLETED answer with a reference and an amount, any of them hostile."""
    return {
        "payment_status": draw(st.sampled_from(["COMPLETED", "completed", " Completed "])),
        "transid": draw(present),
        "reference": draw(st.one_of(st.none(), present)),
        "amount": draw(st.one_of(st.just(str(amount_tzs)), st.just(amount_tzs), present)),
        "msisdn": draw(st.one_of(st.just(PHONE), st.none(), present)),
        "channel": draw(st.one_of(st.just("MPESA-TZ"), hostile_value)),
    }


@pytest.mark.django_db
@PROPERTY
@given(data=st.data())
def test_every_paid_deposit_is_confirmed_or_held(data, fresh_deposit, zenopay_fake):
    deposit = fresh_deposit()
    entry = data.draw(paid_entries(deposit.amount_tzs))
    zenopay_fake.reply(
        200, body=_answer(deposit, entry), headers={"Content-Type": "application/json"}
    )
    outcome = deposit_check(deposit_id=deposit.pk, source="poll")
    deposit.refresh_from_db()
    stored = PaymentNotification.objects.get(deposit=deposit, kind="order_status")
    assert stored.outcome == outcome and "\x00" not in stored.body
    assert outcome in ("applied", "held"), stored.outcome_note
    assert deposit.status in ("mint_pending", "mint_requires_safe") or deposit.hold_reason
    if deposit.hold_reason == "unreadable reference":
        assert Alert.objects.filter(kind="unreadable payment", key=str(deposit.pk)).exists()


@pytest.mark.django_db
@PROPERTY
@given(data=st.data())
def test_any_answer_is_stored_and_leaves_the_deposit_polled_or_decided(
    data, fresh_deposit, zenopay_fake
):
    deposit = fresh_deposit()
    entry = data.draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "payment_status",
                    "transid",
                    "reference",
                    "amount",
                    "msisdn",
                    "channel",
                    "order_id",
                ]
            ),
            unreadable_value,
            max_size=7,
        )
    )
    body = data.draw(st.one_of(st.just(_answer(deposit, entry)), st.binary(max_size=200)))
    status = data.draw(st.sampled_from([200, 200, 200, 400, 404, 429, 500]))
    zenopay_fake.reply(status, body=body, headers={"Content-Type": "application/json"})
    outcome = deposit_check(deposit_id=deposit.pk, source="poll")
    deposit.refresh_from_db()
    assert PaymentNotification.objects.get(deposit=deposit, kind="order_status").outcome == outcome
    # Never stalled: decided (confirmed, held, cancelled) or due for another poll.
    assert deposit.status != "submitted" or deposit.hold_reason or deposit.next_poll_at


@pytest.mark.django_db
@PROPERTY
@given(data=st.data())
def test_every_second_payment_is_recorded_as_an_orphan(data, fresh_deposit, zenopay_fake):
    deposit = fresh_deposit()
    first = {
        "payment_status": "COMPLETED",
        "transid": f"TX-{uuid.uuid4()}",
        "amount": str(deposit.amount_tzs),
        "msisdn": PHONE,
    }
    zenopay_fake.reply(
        200, body=_answer(deposit, first), headers={"Content-Type": "application/json"}
    )
    assert deposit_check(deposit_id=deposit.pk, source="poll") == "applied"
    second = {
        **data.draw(paid_entries(deposit.amount_tzs)),
        "transid": data.draw(present_text.map(str.strip).filter(bool)),
    }
    zenopay_fake.reply(
        200, body=_answer(deposit, second), headers={"Content-Type": "application/json"}
    )
    with time_machine.travel(now() + dt.timedelta(seconds=11)):  # past the 10 s debounce
        outcome = deposit_check(deposit_id=deposit.pk, source="poll")
    deposit.refresh_from_db()
    assert deposit.status in ("mint_pending", "mint_requires_safe")
    assert deposit.hold_reason == ""  # a second payment never stops the first one's mint
    transid = second["transid"]
    orphan = (
        OrphanPayment.objects.filter(psp_reference=transid).first()
        if text_identifier_fits(transid, max_length=100)
        else None
    )
    alerted = Alert.objects.filter(kind="unreadable payment", key=str(deposit.pk)).exists()
    assert (outcome in ("orphan", "duplicate") and orphan is not None) or (
        outcome == "ignored" and alerted
    ), outcome


# --- References never merge -------------------------------------------------------------------


reference_chars = st.characters(
    min_codepoint=33, max_codepoint=0x2FFF, exclude_categories=("C", "Z")
)


@pytest.mark.django_db
@PROPERTY
@given(
    prefix=st.text(reference_chars, min_size=1, max_size=110),
    tails=st.lists(
        st.text(reference_chars, min_size=1, max_size=5), min_size=2, max_size=2, unique=True
    ),
)
def test_two_transids_sharing_a_long_prefix_stay_two_payments(
    prefix, tails, fresh_deposit, baraka, zenopay_fake
):
    first = fresh_deposit()
    second = fresh_deposit(user=baraka, phone="0754111222")
    run = uuid.uuid4().hex[:8]  # examples share the database
    transids = [f"{run}{prefix}{tail}" for tail in tails]
    for deposit, transid, phone in (
        (first, transids[0], PHONE),
        (second, transids[1], "255754111222"),
    ):
        zenopay_fake.reply(
            200,
            body=_answer(
                deposit,
                {
                    "payment_status": "COMPLETED",
                    "transid": transid,
                    "msisdn": phone,
                    "amount": str(deposit.amount_tzs),
                },
            ),
            headers={"Content-Type": "application/json"},
        )
        assert deposit_check(deposit_id=deposit.pk, source="poll") in ("applied", "held")
    first.refresh_from_db()
    second.refresh_from_db()
    for deposit, transid in ((first, transids[0]), (second, transids[1])):
        assert deposit.hold_reason != "conflicting PSP reference"
        confirmed = deposit.status in ("mint_pending", "mint_requires_safe")
        assert confirmed == (len(transid) <= 100)
        # Confirmed with its whole transid, or held as unreadable: never a clipped one.
        assert deposit.psp_reference == (transid if confirmed else "")
        assert confirmed or deposit.hold_reason == "unreadable reference"


# --- The deposit form ----------------------------------------------------------------------------


form_value = st.one_of(
    hostile_text.map(lambda text: text.encode("utf-8", "backslashreplace")),
    st.binary(max_size=60),
)


@pytest.mark.django_db
@PROPERTY
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            name: form_value
            for name in (
                "amount_tzs",
                "payment_provider",
                "buyer_phone",
                "bank",
                "wallet",
                "idempotency_key",
            )
        },
    ),
    good_wallet=st.booleans(),
)
def test_the_deposit_form_never_answers_500(fields, good_wallet, client, amina, fresh_deposit):
    client.force_login(amina)
    if good_wallet:
        fields = {
            **fields,
            "wallet": str(amina.test_wallet.pk).encode(),
            "payment_provider": b"zenopay",
        }
    body = "&".join(f"{name}={quote_from_bytes(value)}" for name, value in fields.items())
    response = client.post(
        reverse("deposits:new"), data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in (200, 302)


@pytest.mark.django_db
def test_a_digit_lookalike_amount_is_a_form_error_and_other_scripts_digits_are_read(
    client, amina, fresh_deposit
):
    client.force_login(amina)
    form = {
        "payment_provider": "zenopay",
        "buyer_phone": "0712 345 678",
        "bank": "",
        "wallet": str(amina.test_wallet.pk),
        "idempotency_key": str(uuid.uuid4()),
    }
    refused = client.post(reverse("deposits:new"), {**form, "amount_tzs": "5000²"})
    assert refused.status_code == 200
    assert "Enter the amount in whole shillings" in refused.content.decode()
    assert not DepositRequest.objects.exists()
    arabic_indic = "٥,٠٠٠"  # 5,000
    accepted = client.post(reverse("deposits:new"), {**form, "amount_tzs": arabic_indic})
    assert accepted.status_code == 302
    assert DepositRequest.objects.get().amount_tzs == 5_000


@pytest.mark.django_db
def test_an_api_body_nested_150_000_deep_is_a_400_not_a_dead_worker(amina):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=amina).key}")
    # ~300 KB: under the upload limit, and past what the C decoder survives with the
    # recursion limit py_ecc sets (unguarded, this test kills the test process).
    body = "[" * 150_000 + "]" * 150_000
    response = api.post("/api/v1/deposits", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "malformed"
    assert not DepositRequest.objects.exists()


@pytest.mark.django_db
def test_an_api_body_over_the_upload_limit_is_a_400(amina, settings):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=amina).key}")
    body = '{"amount_tzs": 5000, "note": "' + "x" * 2_000 + '"}'
    response = api.post("/api/v1/deposits", data=body, content_type="application/json")
    assert response.status_code == 400
    assert not DepositRequest.objects.exists()


@pytest.mark.django_db
def test_a_megabyte_of_escaped_quotes_is_a_prompt_400(amina):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=amina).key}")
    body = '"' + '\\"' * 500_000
    response = api.post("/api/v1/deposits", data=body, content_type="application/json")
    assert response.status_code == 400
    assert not DepositRequest.objects.exists()
