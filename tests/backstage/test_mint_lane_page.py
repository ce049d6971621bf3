"""MINT_LANE on the Backstage minting page: the effective lane and where it comes from, the
super admin's request to switch it, and its approval by a second super admin in "Waiting
for me" (four eyes, the services' refusals in their words)."""

from __future__ import annotations

import pytest

from core.models import AdminAction, DualControlRequest
from core.selectors import mint_lane_effective
from tests.factories import super_admin

pytestmark = pytest.mark.django_db

MINTING = "/backstage/minting/"
SWITCH = f"{MINTING}lane/"
QUEUE = "/backstage/four-eyes/"


@pytest.fixture
def zawadi(db):
    """A second super admin: the checker."""
    return super_admin(email="zawadi@ntzs.test", full_name="Zawadi Mrema")


def _decision(request: DualControlRequest) -> str:
    return f"{QUEUE}{request.pk}/"


def test_the_page_shows_the_lane_from_the_environment_to_compliance_without_the_form(
    login, neema, settings
):
    settings.MINT_LANE = "safe_only"
    body = login(neema).get(MINTING).content.decode()
    assert 'id="mint-lane"' in body
    assert '<strong class="mono">safe_only</strong>' in body
    assert "the environment (MINT_LANE)" in body
    assert f'action="{SWITCH}"' not in body


def test_a_super_admin_requests_the_switch_and_a_second_one_approves_it(
    login, client, salim, zawadi
):
    page = login(salim).get(MINTING).content.decode()
    assert f'action="{SWITCH}"' in page and '<strong class="mono">auto</strong>' in page

    asked = client.post(
        SWITCH, {"lane-lane": "safe_only", "lane-reason": "untracked mint"}, follow=True
    )

    request = DualControlRequest.objects.get(action="mint_lane_set")
    assert (request.maker, request.params, request.evidence) == (
        salim,
        {"lane": "safe_only"},
        "untracked mint",
    )
    assert "is requested" in asked.content.decode()
    assert mint_lane_effective().lane == "auto"  # not before the checker
    waiting = client.get(MINTING).content.decode()
    assert "Waiting for a checker" in waiting and f'href="{_decision(request)}"' in waiting

    checker = login(zawadi)
    assert f'href="{_decision(request)}"' in checker.get(QUEUE).content.decode()
    decision = checker.get(_decision(request)).content.decode()
    assert "Switches MINT_LANE at once" in decision  # what the approval does
    assert "safe_only" in decision and "lane now" in decision  # the prepare step's facts
    checker.post(f"{_decision(request)}approve/", {"approve-reason": "agreed"})

    state = mint_lane_effective()
    assert (state.lane, state.overridden, state.changed_by) == ("safe_only", True, zawadi)
    shown = checker.get(MINTING).content.decode()
    assert '<strong class="mono">safe_only</strong>' in shown
    assert f"requested by {salim.email}, approved by {zawadi.email}" in shown
    assert "Waiting for a checker" not in shown
    assert AdminAction.objects.filter(action="mint_lane.set", actor=zawadi).exists()


def test_the_maker_cannot_approve_their_own_switch_even_by_a_forged_post(login, salim):
    client = login(salim)
    client.post(SWITCH, {"lane-lane": "safe_only", "lane-reason": "key exposed"})
    request = DualControlRequest.objects.get(action="mint_lane_set")

    refused = client.post(f"{_decision(request)}approve/", {}, follow=True)

    assert "different person from the maker" in refused.content.decode()
    request.refresh_from_db()
    assert request.decision == "pending"
    assert mint_lane_effective().lane == "auto"


def test_compliance_cannot_request_the_switch_and_is_told_why(login, neema):
    page = login(neema).post(
        SWITCH, {"lane-lane": "safe_only", "lane-reason": "incident"}, follow=True
    )
    assert "may not switch MINT_LANE" in page.content.decode()
    assert not DualControlRequest.objects.exists()


def test_a_switch_needs_a_reason_and_a_known_lane(login, salim):
    client = login(salim)
    no_reason = client.post(SWITCH, {"lane-lane": "safe_only"}, follow=True)
    assert "This field is required" in no_reason.content.decode()
    unknown = client.post(SWITCH, {"lane-lane": "worker", "lane-reason": "x"}, follow=True)
    assert "Select a valid choice" in unknown.content.decode()
    assert not DualControlRequest.objects.exists()


def test_a_bank_admin_cannot_reach_the_switch(login, nmb_admin):
    assert (
        login(nmb_admin).post(SWITCH, {"lane-lane": "safe_only", "lane-reason": "x"}).status_code
        == 403
    )
    assert not DualControlRequest.objects.exists()
