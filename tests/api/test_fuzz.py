"""schemathesis against the generated OpenAPI document: every operation, fuzzed with valid
and invalid input by a customer holding an API token (approved KYC, a verified wallet, the
ZenoPay sandbox on as in every test), never answers 5xx and always answers as documented.

Each operation runs a bounded number of examples with a fixed Hypothesis seed (printed;
``FUZZ_SEED=<n>`` reruns with another, ``FUZZ_EXAMPLES=<n>`` digs deeper). The app is
called in-process through schemathesis' WSGI support, inside the test's transaction.

Throttles stay at their production rates: a 429 is an expected, documented answer. The cache
that counts them is emptied every ``THROTTLE_WINDOW`` examples, so each operation is both
fuzzed past its throttle and answered 429.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from core.clock import now
from deposits.models import Bank
from deposits.services.intake import DepositInput, deposit_create
from reconciliation.models import SupplySnapshot
from tests.factories import KycCaseFactory, WalletFactory, customer

pytestmark = pytest.mark.django_db

SEED = int(os.environ.get("FUZZ_SEED", "20261216"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))  # per operation and mode
THROTTLE_WINDOW = 12  # deposits_create allows 10 a minute: examples 11 and 12 of each are 429

OPERATIONS = (
    "GET /api/v1/deposits",
    "POST /api/v1/deposits",
    "GET /api/v1/deposits/{deposit_id}",
    "POST /api/v1/deposits/{deposit_id}/check",
    "GET /api/v1/supply",
    "GET /api/v1/supply/circulating",
    "GET /api/v1/supply/total",
    "POST /api/webhooks/zenopay",
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
PHONE = "+255712345678"


def test_every_operation_of_the_generated_schema_is_fuzzed(openapi_document):
    schema = schemathesis.openapi.from_dict(openapi_document)
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert labels == set(OPERATIONS)


@pytest.fixture
def api_world(settings):
    """A customer who can deposit (approved KYC, a verified wallet, an API token), banks for
    both payment lanes, deposits of both kinds and a fresh supply snapshot."""
    settings.ZENOPAY_SANDBOX = True
    person = customer(email="fuzz@ntzs.test", phone=PHONE)
    KycCaseFactory(user=person, approved=True)
    wallet = WalletFactory(user=person, verified=True)
    Bank.objects.create(name="CRDB (ZenoPay settlement)", is_zenopay_settlement=True)
    bank = Bank.objects.create(
        name="NMB",
        account_name="nTZS Ltd",
        account_number="20401234567",
        transfer_instructions="Account 2040 1234 567",
    )
    mobile, _ = deposit_create(
        user=person,
        data=DepositInput(
            amount_tzs=5_000, payment_provider="zenopay", wallet_id=wallet.pk, buyer_phone=PHONE
        ),
    )
    transfer, _ = deposit_create(
        user=person,
        data=DepositInput(
            amount_tzs=250_000,
            payment_provider="bank_transfer",
            wallet_id=wallet.pk,
            bank_id=bank.pk,
        ),
    )
    someone_else = customer(email="other@ntzs.test")
    KycCaseFactory(user=someone_else, approved=True)
    others_wallet = WalletFactory(user=someone_else, verified=True)
    theirs, _ = deposit_create(
        user=someone_else,
        data=DepositInput(
            amount_tzs=7_000,
            payment_provider="zenopay",
            wallet_id=others_wallet.pk,
            buyer_phone="+255713000111",
        ),
    )
    SupplySnapshot.objects.create(
        at=now() - dt.timedelta(minutes=1),
        chain_id=31337,
        block_number=100,
        onchain_supply_units=262_000 * 10**18,
        db_minted_tzs=262_000,
        deposits_minted_tzs=262_000,
        reconciled_units=0,
        in_flight_tzs=0,
        discrepancy_units=0,
        treasury_units=10**18,
    )
    return {
        "token": Token.objects.create(user=person).key,
        "deposit_ids": [str(mobile.pk), str(transfer.pk), str(theirs.pk)],
        "wallet_id": str(wallet.pk),
        "bank_id": str(bank.pk),
    }


def _fuzzable_schema(openapi_document: dict, world: dict):
    """The schema, with hooks that sometimes put real values where random ones would only
    ever be refused: the customer's deposits (and another customer's) in paths, the
    customer's wallet, bank and phone in a new deposit."""
    schema = schemathesis.openapi.from_dict(openapi_document)

    @schema.hook("flatmap_path_parameters")
    def real_deposits(context, path_parameters):
        if "deposit_id" not in (path_parameters or {}):
            return st.just(path_parameters)
        known = [{**path_parameters, "deposit_id": pk} for pk in world["deposit_ids"]]
        return st.sampled_from([path_parameters, *known])

    @schema.hook("flatmap_body")
    def real_references(context, body):
        if context.operation.label != "POST /api/v1/deposits" or not isinstance(body, dict):
            return st.just(body)
        real = {**body, "wallet_id": world["wallet_id"]}
        if real.get("payment_provider") == "bank_transfer":
            real["bank_id"] = world["bank_id"]
        elif "buyer_phone" in real:
            real["buyer_phone"] = PHONE
        return st.sampled_from([body, real])

    return schema


# Invalid input needs an input: the supply operations take none, so they run positive only.
RUNS = [
    pytest.param(label, mode, id=f"{label}-{mode}")
    for label in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or "/supply" not in label
]


@pytest.mark.slow
@pytest.mark.parametrize(("label", "mode"), RUNS)
def test_no_operation_answers_5xx_or_off_its_schema(
    label, mode, openapi_document, api_world, wsgi_app
):
    print(f"schemathesis {schemathesis.__version__}, hypothesis seed {SEED} (FUZZ_SEED)")
    operation = _fuzzable_schema(openapi_document, api_world).find_operation_by_label(label)
    token = {"Authorization": f"Token {api_world['token']}"}
    calls = {"count": 0, "statuses": set()}

    @seed(SEED)
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        anonymous=st.sampled_from([False, False, False, True]),
    )
    def fuzz(case, anonymous):
        calls["count"] += 1
        if calls["count"] % THROTTLE_WINDOW == 0:
            cache.clear()
        headers = {} if anonymous else token  # a quarter without credentials: 401
        response = case.call(app=wsgi_app, headers=headers)
        calls["statuses"].add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    fuzz()
    print(f"{label} {mode}: {calls['count']} calls, statuses {sorted(calls['statuses'])}")
    assert calls["count"] > 0  # an operation without parameters has few distinct examples


# Every throttled read, driven past its production rate (DRF's rates, counted per user, or per
# client for the anonymous supply endpoints): the 429 it ends with is documented too.
THROTTLED_READS = {
    "GET /api/v1/deposits": 120,  # deposits_read
    "GET /api/v1/deposits/{deposit_id}": 120,  # deposits_read
    "GET /api/v1/supply": 120,  # supply (SUPPLY_API_RATE)
    "GET /api/v1/supply/total": 120,
    "GET /api/v1/supply/circulating": 120,
}


@pytest.mark.slow
@pytest.mark.parametrize(("label", "rate"), THROTTLED_READS.items())
def test_a_throttled_read_answers_a_documented_429(
    label, rate, openapi_document, api_world, wsgi_app
):
    operation = schemathesis.openapi.from_dict(openapi_document).find_operation_by_label(label)
    path = {"deposit_id": api_world["deposit_ids"][0]} if "{deposit_id}" in label else {}
    case = operation.Case(path_parameters=path)
    headers = {"Authorization": f"Token {api_world['token']}"}
    answers = [case.call(app=wsgi_app, headers=headers).status_code for _ in range(rate)]
    assert set(answers) == {200}
    response = case.call(app=wsgi_app, headers=headers)
    assert response.status_code == 429
    case.validate_response(response, checks=CHECKS, headers=headers)


@pytest.mark.parametrize("label", ["GET /api/v1/supply/total", "GET /api/v1/supply/circulating"])
@pytest.mark.parametrize("accept", ["text/plain", "text/plain; charset=utf-8", "*/*"])
def test_a_plain_supply_figure_is_served_to_a_client_asking_for_text(
    label, accept, openapi_document, api_world, wsgi_app
):
    """Price sites ask for text: content negotiation must not refuse them (406)."""
    operation = schemathesis.openapi.from_dict(openapi_document).find_operation_by_label(label)
    case = operation.Case()
    response = case.call(app=wsgi_app, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"][0].startswith("text/plain")
    case.validate_response(response, checks=CHECKS, headers={"Accept": accept})
