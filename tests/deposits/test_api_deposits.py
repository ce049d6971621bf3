"""REST API v1: create (with Idempotency-Key), list, retrieve and check; every refusal is a
JSON reason ({"error", "detail"[, "field"]}) with the right status, and no deposit is written."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.clock import now
from deposits.models import DepositRequest, LimitEvent
from deposits.services import transitions as t
from tests.factories import KycCaseFactory, WalletFactory, customer

pytestmark = pytest.mark.django_db

DEPOSITS = "/api/v1/deposits"
ZENOPAY = DepositRequest.Provider.ZENOPAY
BANK = DepositRequest.Provider.BANK_TRANSFER


def _api(person) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=person).key}")
    return client


@pytest.fixture
def api(amina) -> APIClient:
    return _api(amina)


def _body(person, **overrides) -> dict:
    body = {
        "amount_tzs": 25_000,
        "payment_provider": ZENOPAY,
        "wallet_id": str(person.test_wallet.pk),
        "buyer_phone": "0712 345 678",
    }
    body.update(overrides)
    return body


def _create(api, body, key=None, **extra):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(DEPOSITS, body, format="json", headers=headers, **extra)


def _error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["error"] == code
    assert data["detail"]
    assert data.get("field") == field
    return data


# --- Create, replay, conflict --------------------------------------------------------------------


def test_create_answers_201_with_the_deposit_and_its_location(api, amina):
    response = _create(api, _body(amina), key="order-1")
    data = response.json()
    deposit = DepositRequest.objects.get()
    assert response.status_code == 201
    assert response["Location"] == f"{DEPOSITS}/{deposit.pk}"
    assert data["id"] == str(deposit.pk)
    assert (data["status"], data["stage"], data["amount_tzs"]) == ("submitted", "sending", 25_000)
    assert data["buyer_phone_masked"] == "+255 7•• ••• 678"
    assert "712345678" not in response.content.decode()
    assert data["wallet_address"] == amina.test_wallet.address
    assert deposit.idempotency_key == "order-1"


def test_create_a_bank_transfer_returns_the_reference_and_instructions(api, amina, nmb_bank):
    response = _create(
        api, _body(amina, payment_provider=BANK, bank_id=str(nmb_bank.pk), buyer_phone="")
    )
    data = response.json()
    assert response.status_code == 201
    assert data["transfer_reference"].startswith("NTZS")
    assert (data["bank"], data["transfer_instructions"]) == ("NMB", "Account 2040 1234 567")
    assert data["stage"] == "awaiting_transfer"


def test_a_replay_with_the_same_key_returns_the_same_deposit(api, amina):
    first = _create(api, _body(amina), key="order-1")
    again = _create(api, _body(amina), key="order-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert DepositRequest.objects.count() == 1


def test_the_same_key_with_another_body_is_422(api, amina):
    _create(api, _body(amina), key="order-1")
    response = _create(api, _body(amina, amount_tzs=30_000), key="order-1")
    _error(response, 422, "idempotency_conflict", "Idempotency-Key")
    assert DepositRequest.objects.count() == 1


def test_an_overlong_idempotency_key_is_400(api, amina):
    _error(_create(api, _body(amina), key="k" * 101), 400, "invalid")
    assert DepositRequest.objects.count() == 0


# --- Bad input --------------------------------------------------------------------------------


BAD_BODIES = [
    ({"amount_tzs": None}, "amount_tzs", "This field may not be null."),
    ({"amount_tzs": ""}, "amount_tzs", "whole number of shillings"),
    ({"amount_tzs": -5_000}, "amount_tzs", "The amount must be more than zero."),
    ({"amount_tzs": 0}, "amount_tzs", "The amount must be more than zero."),
    ({"amount_tzs": "abc"}, "amount_tzs", "whole number of shillings"),
    ({"amount_tzs": 5000.5}, "amount_tzs", "whole number of shillings"),
    ({"amount_tzs": 5000.0}, "amount_tzs", "whole number of shillings"),
    ({"amount_tzs": True}, "amount_tzs", "whole number of shillings"),
    ({"amount_tzs": 10**30}, "amount_tzs", "The largest single deposit is TSh 1,000,000."),
    ({"buyer_phone": ""}, "buyer_phone", "Enter the mobile number that will pay."),
    ({"buyer_phone": "+254712345678"}, "buyer_phone", "Only Tanzanian mobile numbers"),
    ({"buyer_phone": "+255 22 212 3456"}, "buyer_phone", "not a Tanzanian mobile number"),
    (
        {"buyer_phone": "<script>alert(1)</script>"},
        "buyer_phone",
        "Enter a Tanzanian mobile number",
    ),
    ({"payment_provider": "cash"}, "payment_provider", "is not a valid choice"),
    ({"wallet_id": "not-a-uuid"}, "wallet_id", "Must be a valid UUID."),
    ({"wallet_id": str(uuid.uuid4())}, "wallet_id", "Choose one of your verified wallets."),
    (
        {"payment_provider": BANK, "buyer_phone": ""},
        "bank_id",
        "Choose the bank you will transfer from.",
    ),
]


@pytest.mark.parametrize(("overrides", "field", "message"), BAD_BODIES)
def test_bad_input_is_a_400_with_the_field_and_writes_nothing(
    api, amina, overrides, field, message
):
    data = _error(_create(api, _body(amina, **overrides)), 400, "invalid", field)
    assert message in data["detail"]
    assert DepositRequest.objects.count() == 0


def test_a_missing_field_is_named(api, amina):
    body = _body(amina)
    del body["amount_tzs"]
    assert (
        _error(_create(api, body), 400, "invalid", "amount_tzs")["detail"]
        == "This field is required."
    )


def test_malformed_json_is_400(api):
    response = api.post(DEPOSITS, data="{not json", content_type="application/json")
    _error(response, 400, "malformed")


def test_a_list_instead_of_an_object_is_400(api):
    _error(api.post(DEPOSITS, [1, 2], format="json"), 400, "invalid")


def test_another_customers_wallet_is_refused(api, amina, baraka):
    _error(
        _create(api, _body(amina, wallet_id=str(baraka.test_wallet.pk))),
        400,
        "invalid",
        "wallet_id",
    )
    assert DepositRequest.objects.count() == 0


def test_errors_come_in_kiswahili_when_asked(api, amina):
    response = _create(api, _body(amina, amount_tzs=0), HTTP_ACCEPT_LANGUAGE="sw")
    assert (
        _error(response, 400, "invalid", "amount_tzs")["detail"]
        == "Kiasi lazima kiwe zaidi ya sifuri."
    )


# --- Limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        (999, "limit_min_deposit", "The smallest deposit is TSh 1,000."),
        (1_000_001, "limit_max_deposit", "The largest single deposit is TSh 1,000,000."),
    ],
)
def test_amount_limits_are_422_with_a_reason(api, amina, amount, code, message):
    data = _error(_create(api, _body(amina, amount_tzs=amount)), 422, code, "amount_tzs")
    assert data["detail"] == message
    assert DepositRequest.objects.count() == 0
    assert LimitEvent.objects.get().kind == code.removeprefix("limit_")


def test_the_daily_limit_is_422_with_what_is_left(api, amina, make_deposit, settings):
    settings.USER_DAILY_LIMIT_TZS = 10_000
    make_deposit(amount=8_000)
    data = _error(
        _create(api, _body(amina, amount_tzs=5_000)), 422, "limit_user_daily", "amount_tzs"
    )
    assert "(TSh 2,000 left today)" in data["detail"]
    assert DepositRequest.objects.count() == 1


def test_the_30_day_limit_is_422_with_what_is_left(api, amina, make_deposit, settings):
    settings.USER_MONTHLY_LIMIT_TZS = 10_000
    make_deposit(amount=8_000)
    data = _error(
        _create(api, _body(amina, amount_tzs=5_000)), 422, "limit_user_monthly", "amount_tzs"
    )
    assert "30-day limit of TSh 10,000 (TSh 2,000 left)" in data["detail"]


def test_the_creation_rate_limit_is_429(api, amina, settings):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 1
    assert _create(api, _body(amina, amount_tzs=5_000)).status_code == 201
    data = _error(_create(api, _body(amina, amount_tzs=6_000)), 429, "rate_limited")
    assert "Too many deposits" in data["detail"]
    assert DepositRequest.objects.count() == 1


# --- Authentication and permissions ------------------------------------------------------------


def test_no_credentials_is_401_with_the_scheme(amina):
    response = APIClient().get(DEPOSITS)
    _error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_401(amina):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    _error(client.get(DEPOSITS), 401, "authentication_failed")


def test_creating_without_approved_identity_is_403(settlement_bank):
    person = customer(email="juma@ntzs.test")
    KycCaseFactory(user=person)
    wallet = WalletFactory(user=person, verified=True)
    response = _create(
        _api(person),
        {
            "amount_tzs": 5_000,
            "payment_provider": ZENOPAY,
            "wallet_id": str(wallet.pk),
            "buyer_phone": "0712345678",
        },
    )
    data = _error(response, 403, "kyc_required")
    assert "identity check must be approved" in data["detail"]
    assert DepositRequest.objects.count() == 0


def test_a_session_post_without_csrf_is_403_and_with_it_works(amina):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(amina)
    response = browser.post(DEPOSITS, _body(amina), content_type="application/json")
    _error(response, 403, "csrf_failed")
    assert DepositRequest.objects.count() == 0

    browser.get("/deposits/new/")  # sets the CSRF cookie, as a page would
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        DEPOSITS, _body(amina), content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 201


def test_the_session_reads_without_a_token(amina, make_deposit):
    make_deposit()
    browser = Client()
    browser.force_login(amina)
    assert browser.get(DEPOSITS).json()["count"] == 1


# --- List and retrieve ---------------------------------------------------------------------------


def test_list_shows_only_ones_own_deposits_newest_first(api, make_deposit, baraka, settings):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 100
    older, newer = make_deposit(amount=5_000), make_deposit(amount=6_000)
    make_deposit(user=baraka, amount=7_000)
    data = api.get(DEPOSITS).json()
    assert data["count"] == 2
    assert [d["id"] for d in data["results"]] == [str(newer.pk), str(older.pk)]


def test_list_pages_with_limit_and_offset(api, make_deposit, settings):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 100
    for i in range(3):
        make_deposit(amount=1_000 + i)
    data = api.get(DEPOSITS, {"limit": 2, "offset": 2}).json()
    assert data["count"] == 3 and len(data["results"]) == 1
    assert data["results"][0]["amount_tzs"] == 1_000
    assert data["previous"] is not None and data["next"] is None


def test_retrieve_ones_own_deposit(api, make_deposit, settings):
    settings.EXPLORER_URL = "https://sepolia.basescan.org"  # as on Base Sepolia (84532)
    deposit = make_deposit(amount=5_000)
    t.deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=5_000, psp_reference="TX77", source="poll"
    )
    t.deposits_claim(deposit_ids=[deposit.pk])
    t.deposit_mark_minted(deposit_id=deposit.pk, tx_hash="0x" + "ef" * 32, source="worker")
    data = api.get(f"{DEPOSITS}/{deposit.pk}").json()
    assert (data["status"], data["stage"], data["psp_reference"]) == ("minted", "minted", "TX77")
    assert data["explorer_url"] == "https://sepolia.basescan.org/tx/0x" + "ef" * 32
    assert data["can_check"] is False


def test_another_customers_deposit_is_404(api, make_deposit, baraka):
    theirs = make_deposit(user=baraka)
    data = _error(api.get(f"{DEPOSITS}/{theirs.pk}"), 404, "not_found")
    assert str(theirs.pk) not in data["detail"]


@pytest.mark.parametrize("bad_id", ["12", "not-a-uuid", str(uuid.uuid4())])
def test_an_unknown_or_malformed_id_is_a_json_404(api, bad_id):
    _error(api.get(f"{DEPOSITS}/{bad_id}"), 404, "not_found")


def test_an_unsupported_method_is_405(api):
    _error(api.delete(DEPOSITS), 405, "method_not_allowed")


# --- Check ---------------------------------------------------------------------------------------


def test_check_schedules_a_zenopay_check_and_answers_202(
    api, make_deposit, broker, django_capture_on_commit_callbacks
):
    deposit = make_deposit()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{DEPOSITS}/{deposit.pk}/check")
    assert response.status_code == 202
    assert response.json()["id"] == str(deposit.pk)
    assert broker() == [
        ("deposits.tasks.check_deposit", [str(deposit.pk), "user", str(deposit.user_id), True])
    ]


def test_check_on_a_settled_deposit_is_409(
    api, make_deposit, broker, django_capture_on_commit_callbacks
):
    deposit = make_deposit()
    t.deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=deposit.amount_tzs, psp_reference="TX9", source="poll"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{DEPOSITS}/{deposit.pk}/check")
    assert "already settled" in _error(response, 409, "not_checkable")["detail"]
    assert broker() == []


def test_check_on_a_bank_transfer_is_409(api, make_deposit, nmb_bank):
    deposit = make_deposit(provider=BANK, bank=nmb_bank, phone="")
    data = _error(api.post(f"{DEPOSITS}/{deposit.pk}/check"), 409, "not_checkable")
    assert "bank confirms transfers" in data["detail"]


def test_check_on_a_held_deposit_is_409(api, make_deposit):
    deposit = make_deposit()
    t.deposit_hold_set(deposit_id=deposit.pk, reason="phone mismatch", source="poll")
    assert (
        "under review"
        in _error(api.post(f"{DEPOSITS}/{deposit.pk}/check"), 409, "not_checkable")["detail"]
    )


def test_check_on_another_customers_deposit_is_404(api, make_deposit, baraka):
    theirs = make_deposit(user=baraka)
    _error(api.post(f"{DEPOSITS}/{theirs.pk}/check"), 404, "not_found")


# --- Throttling ----------------------------------------------------------------------------------


def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def test_repeated_checks_queue_one_check_per_debounce_and_each_answers_202(
    api, amina, make_deposit, broker, django_capture_on_commit_callbacks
):
    deposit = make_deposit()
    url = f"{DEPOSITS}/{deposit.pk}/check"
    with django_capture_on_commit_callbacks(execute=True):
        assert [api.post(url).status_code for _ in range(3)] == [202, 202, 202]
    assert broker() == [
        ("deposits.tasks.check_deposit", [str(deposit.pk), "user", str(amina.pk), True])
    ]


def test_a_check_right_after_the_pollers_check_queues_nothing(
    api, make_deposit, broker, django_capture_on_commit_callbacks
):
    deposit = make_deposit()
    DepositRequest.objects.filter(pk=deposit.pk).update(last_checked_at=now())  # polled just now
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"{DEPOSITS}/{deposit.pk}/check").status_code == 202
    assert broker() == []


def test_creates_are_throttled(api, amina, settings):
    _rates(settings, deposits_create="1/min")
    assert _create(api, _body(amina)).status_code == 201
    _error(_create(api, _body(amina, amount_tzs=6_000)), 429, "throttled")
    assert DepositRequest.objects.count() == 1


def test_reads_are_throttled(api, settings):
    _rates(settings, deposits_read="1/min")
    assert api.get(DEPOSITS).status_code == 200
    _error(api.get(DEPOSITS), 429, "throttled")


def test_one_users_throttle_does_not_limit_another(api, baraka, settings):
    _rates(settings, deposits_read="1/min")
    api.get(DEPOSITS)
    assert _api(baraka).get(DEPOSITS).status_code == 200


def test_a_session_check_without_csrf_is_403_and_schedules_nothing(
    amina, make_deposit, broker, django_capture_on_commit_callbacks
):
    deposit = make_deposit()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(amina)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(f"{DEPOSITS}/{deposit.pk}/check")
    _error(response, 403, "csrf_failed")
    assert broker() == []


@pytest.mark.parametrize(
    "params", [{"limit": "abc"}, {"limit": -1}, {"offset": "x"}, {"limit": 10**9}]
)
def test_odd_paging_values_fall_back_to_sane_pages(api, make_deposit, params):
    make_deposit()
    response = api.get(DEPOSITS, params)
    assert response.status_code == 200
    assert response.json()["count"] == 1
