"""The token roles report (issue 15 point 4) on the local chain: every holder the chain
reports is listed and confirmed with hasRole, next to TOKEN_ROLE_EXPECTED_HOLDERS; a
MINTER_ROLE granted to a new address is listed as unexpected (the command exits non-zero
with a sentence, the indexer's run has opened the alert for the same pair); a grant or a
revocation the indexer has not reached is flagged as a disagreement; an expected holder
without its role is flagged without failing; an unreadable chain fails with a sentence."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.alerts import UNEXPECTED_ROLE_HOLDER
from core.models import Alert
from minting.breaker import rpc_breaker
from minting.chain import role_id
from reconciliation.models import IndexerCursor
from reconciliation.services.matching import index_chain_run
from reconciliation.services.roles import TOKEN_ROLES, token_roles_report
from tests.support.anvil import DEV_ADDRESSES, free_loopback_port

pytestmark = pytest.mark.django_db

NEWCOMER = DEV_ADDRESSES[5]
SAFE = DEV_ADDRESSES[8]
OPERATIONAL = ("PAUSER_ROLE", "FREEZER_ROLE", "BLACKLISTER_ROLE", "WIPER_ROLE", "BURNER_ROLE")


@pytest.fixture
def roles_chain(chain_settings, settings):
    """The session's token indexed from its deploy block, with the expected holders of its
    deployment: the admin key holds the admin and operational roles, the minter key mints."""
    settings.NTZS_DEPLOY_BLOCK = chain_settings.deploy_block
    settings.TOKEN_ROLE_EXPECTED_HOLDERS = {
        "DEFAULT_ADMIN_ROLE": [chain_settings.admin_address.lower()],
        "MINTER_ROLE": [chain_settings.minter_address.lower()],
        **{role: [chain_settings.admin_address.lower()] for role in OPERATIONAL},
    }
    rpc_breaker().reset()
    yield chain_settings
    rpc_breaker().reset()


def grant(chain, role: str, account: str) -> None:
    chain.transact(chain.admin_key, chain.contract.functions.grantRole(role_id(role), account))


def revoke(chain, role: str, account: str) -> None:
    chain.transact(chain.admin_key, chain.contract.functions.revokeRole(role_id(role), account))


def token_roles() -> tuple[str, str | None]:
    """The command's output and its refusal (None when it exits 0)."""
    out = StringIO()
    try:
        call_command("token_roles", stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def row(output: str, role: str, account: str) -> str:
    (line,) = [x for x in output.splitlines() if x.startswith(role + " ") and account in x]
    return line


def holders_on_chain(chain) -> set[tuple[str, str]]:
    """Every (role, dev address) the token says holds, asked one by one."""
    return {
        (role, address)
        for role in TOKEN_ROLES
        for address in DEV_ADDRESSES
        if chain.contract.functions.hasRole(role_id(role), address).call()
    }


def test_every_holder_the_chain_reports_is_listed_and_confirmed(roles_chain):
    index_chain_run()
    report = token_roles_report()

    listed = {(h.role, h.account) for h in report.holders if h.holds}
    assert listed == holders_on_chain(roles_chain)
    assert ("MINTER_ROLE", roles_chain.minter_address) in listed
    assert all(h.on_chain is True and h.indexed and h.expected for h in report.holders)
    assert (report.unexpected, report.expected_missing, report.disagreements) == ([], [], [])
    cursor = IndexerCursor.objects.get(name="roles")
    assert report.cursor.block_number == cursor.block_number
    assert report.head >= cursor.block_number

    output, refusal = token_roles()
    assert refusal is None
    assert f"role events indexed up to block {cursor.block_number}" in output
    assert "OK: every holder is expected and confirmed on chain." in output
    for role, account in listed:
        assert row(output, role, account).split()[2:5] == ["granted", "yes", "yes"]


def test_a_minter_role_granted_to_a_new_address_is_listed_unexpected_and_alerted(roles_chain):
    index_chain_run()
    grant(roles_chain, "MINTER_ROLE", NEWCOMER)
    result = index_chain_run()  # the indexer task's one run

    assert result["unexpected_role_holders"] == 1
    alert = Alert.objects.get(kind=UNEXPECTED_ROLE_HOLDER, resolved_at__isnull=True)
    report = token_roles_report()
    (newcomer,) = report.unexpected
    assert (newcomer.role, newcomer.account) == ("MINTER_ROLE", NEWCOMER)
    assert (newcomer.indexed, newcomer.on_chain, newcomer.expected) == (True, True, False)
    assert alert.key == f"MINTER_ROLE:{NEWCOMER.lower()}"  # the report and the alert agree
    assert {h.account for h in report.holders_of("MINTER_ROLE")} == {
        roles_chain.minter_address,
        NEWCOMER,
    }

    output, refusal = token_roles()
    assert refusal == (
        f"1 unexpected role holder(s): {NEWCOMER} (MINTER_ROLE); revoke the role or add the "
        "address to TOKEN_ROLE_EXPECTED_HOLDERS if it is meant to hold it."
    )
    line = row(output, "MINTER_ROLE", NEWCOMER)
    assert line.split()[2:5] == ["granted", "yes", "no"]
    assert "Unexpected holder" in line


def test_grants_and_revocations_the_indexer_has_not_reached_are_flagged(roles_chain):
    index_chain_run()
    minter, admin = roles_chain.minter_address, roles_chain.admin_address
    grant(roles_chain, "PAUSER_ROLE", minter)  # not indexed yet
    revoke(roles_chain, "WIPER_ROLE", admin)

    report = token_roles_report()

    by_pair = {(h.role, h.account): h for h in report.holders}
    paused_by_minter = by_pair["PAUSER_ROLE", minter]
    assert (paused_by_minter.indexed, paused_by_minter.on_chain) == (False, True)
    assert paused_by_minter.unexpected and paused_by_minter.disagreement
    assert any("indexed events do not show the grant" in f for f in paused_by_minter.findings)
    wiper = by_pair["WIPER_ROLE", admin]
    assert (wiper.indexed, wiper.on_chain) == (True, False)
    assert wiper.expected_missing and wiper.disagreement
    assert any("revocation not indexed yet" in f for f in wiper.findings)
    assert set(report.disagreements) == {paused_by_minter, wiper}
    assert report.holders_of("WIPER_ROLE") == []  # the chain's word, not the events'

    _, refusal = token_roles()
    assert refusal.startswith(f"1 unexpected role holder(s): {minter} (PAUSER_ROLE)")

    index_chain_run()  # caught up: the events agree with the chain again
    assert token_roles_report().disagreements == []


def test_an_expected_holder_without_its_role_is_flagged_without_failing(roles_chain, settings):
    settings.TOKEN_ROLE_EXPECTED_HOLDERS = {
        **settings.TOKEN_ROLE_EXPECTED_HOLDERS,
        "MINTER_ROLE": [roles_chain.minter_address.lower(), SAFE.lower()],
    }
    index_chain_run()

    output, refusal = token_roles()

    assert refusal is None
    line = row(output, "MINTER_ROLE", SAFE)
    assert line.split()[2:5] == ["-", "no", "yes"]
    assert "Expected holder that does not hold the role." in line
    assert "flagged: 1 expected holder(s) without their role" in output


def test_an_unreadable_chain_fails_with_a_sentence_and_confirms_nothing(roles_chain, settings):
    index_chain_run()
    settings.BASE_SEPOLIA_RPC_URL = f"http://127.0.0.1:{free_loopback_port()}"  # nobody there

    report = token_roles_report()
    assert report.chain_error and report.head is None
    assert all(h.on_chain is None for h in report.holders)
    minter_row = next(h for h in report.holders if h.role == "MINTER_ROLE")
    assert "Not confirmed on chain: the chain could not be read." in minter_row.findings

    output, refusal = token_roles()
    assert refusal.startswith("The chain could not be read (")
    assert refusal.endswith("no holder is confirmed; run it again when the node answers.")
    assert row(output, "MINTER_ROLE", roles_chain.minter_address).split()[2:4] == ["granted", "?"]
