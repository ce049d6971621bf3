"""Session fixtures. The PostgreSQL and Redis servers are started by the test settings
(config/settings/test.py) before Django loads; anvil by tests.support.chain_fixtures."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.support.chain_fixtures",
    "tests.support.broker",
    "tests.support.zenopay_sandbox",
    "tests.support.base_proxy",
    "tests.support.log_scan",
]


# Fixtures that start or use the session's anvil chain (tests.support.chain_fixtures); a test
# using any of them, directly or through another fixture, is marked ``chain``.
CHAIN_FIXTURES = frozenset({"anvil_node", "ntzs_deployment", "local_safe", "chain"})

# Slow scenarios: each takes a second or more, most of it starting real processes (a worker,
# a fresh Django, solc, a socket timeout) or running many generated cases; measured with
# --durations on a loaded two-core machine. Test ids without parameters; tests/minting is
# another owner's, so its slow ones are listed here rather than marked in place.
SLOW_FILES = frozenset(
    {
        "tests/config/test_settings.py",  # every test starts a fresh Django process
        "tests/contracts/test_artifact.py",  # compiles the contract
    }
)
SLOW_TESTS = frozenset(
    {
        "tests/accounts/test_login_throttle.py::"
        "test_thirty_wrong_passwords_lock_both_login_pages_across_processes_until_it_expires",
        "tests/accounts/test_staff_roles.py::"
        "test_staff_bootstrap_exits_non_zero_with_a_sentence_the_second_time",
        "tests/backstage/test_demo_commands.py::"
        "test_demo_users_exits_non_zero_with_one_sentence_in_production",
        "tests/backstage/test_health.py::"
        "test_healthcheck_command_fails_with_a_sentence_when_the_broker_is_down",
        "tests/backstage/test_health.py::"
        "test_anonymous_readyz_is_503_not_ready_when_the_broker_is_down",
        "tests/config/test_celery.py::"
        "test_a_task_round_trips_through_redis_to_a_real_worker_and_records_its_heartbeat",
        "tests/deposits/test_api_schema.py::test_the_schema_validates_without_warnings",
        "tests/deposits/test_outside_input_properties.py::"
        "test_every_second_payment_is_recorded_as_an_orphan",
        "tests/deposits/test_outside_input_properties.py::"
        "test_every_webhook_call_is_stored_and_never_a_500",
        "tests/deposits/test_outside_input_properties.py::"
        "test_two_transids_sharing_a_long_prefix_stay_two_payments",
        "tests/deposits/test_outside_input_properties.py::"
        "test_every_paid_deposit_is_confirmed_or_held",
        "tests/deposits/test_outside_input_properties.py::"
        "test_any_answer_is_stored_and_leaves_the_deposit_polled_or_decided",
        "tests/deposits/test_outside_input_properties.py::test_the_deposit_form_never_answers_500",
        "tests/deposits/test_sandbox.py::"
        "test_over_a_socket_the_timing_out_create_answers_after_the_timeout",
        "tests/minting/test_structure.py::"
        "test_every_minting_module_imports_first_in_a_fresh_interpreter",
    }
)


def pytest_collection_modifyitems(config, items):
    """``chain`` on every test that uses the anvil fixtures, ``slow`` on the listed slow
    scenarios: ``make test-fast`` deselects both, ``make test`` runs everything."""
    for item in items:
        if CHAIN_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.chain)
        test_id = item.nodeid.split("[")[0]
        if test_id in SLOW_TESTS or test_id.split("::")[0] in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _clear_cache():
    """The cache is a real Redis shared by the session: start every test from empty."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _default_language():
    """A request with the Kiswahili cookie activates it in this thread, and Django leaves it
    active after the response: every test starts and ends in the default language."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _forget_verified_nodes():
    """mint_client proves a node once a minute per process: each test proves its own."""
    from minting.rpc import rpc_backup_verifications_forget

    rpc_backup_verifications_forget()
    yield


@pytest.fixture(autouse=True)
def _staff_role_groups(request):
    """The role groups and permissions the data migrations create. A transactional test
    flushes them away when it ends; pytest-django runs those last, but pytest groups the
    tests of a parametrized session fixture (the local Safe's versions) together, so a live
    server's test can end mid-session. Put them back for the next database test."""
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
    } & set(request.fixturenames)
    if uses_db:
        transactional = "transactional_db" in request.fixturenames or any(
            marker.kwargs.get("transaction") for marker in request.node.iter_markers("django_db")
        )
        request.getfixturevalue("transactional_db" if transactional else "db")
        from django.contrib.auth.models import Group

        from tests.support.roles import staff_roles_restore

        if not Group.objects.filter(name="super_admin").exists():
            staff_roles_restore()
    yield


@pytest.fixture
def chain_settings(chain, settings):
    """Django pointed at the session's anvil and NTZS deployment (reverted after the test)."""
    settings.BASE_SEPOLIA_RPC_URL = chain.url
    settings.CHAIN_ID = 31337
    settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = chain.address
    settings.MINTER_PRIVATE_KEY = chain.minter_key
    settings.SAFE_ADDRESS = ""
    return chain


@pytest.fixture
def staff_otp_login():
    """Log a test client in as ``user`` with a confirmed TOTP device and an OTP-verified
    session (what passing the second factor leaves behind). Returns the device."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def login(client, user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return device

    return login
