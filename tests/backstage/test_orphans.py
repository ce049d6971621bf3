"""Orphan payments in Backstage: the queue, the maker's attach request (amount and phone must
match: the service decides) approved by a colleague in the four-eyes queue, and the dismissal
with a note; refusals in the services' words."""

from __future__ import annotations

import pytest

from core.models import AdminAction, DualControlRequest
from deposits.models import DepositRequest, OrphanPayment
from deposits.services.intake import DepositInput, deposit_create
from tests.factories import compliance_officer

pytestmark = pytest.mark.django_db

QUEUE = "/backstage/orphans/"


@pytest.fixture
def rehema(db):
    return compliance_officer(email="rehema@ntzs.test", full_name="Rehema Ally")


@pytest.fixture
def orphan(db) -> OrphanPayment:
    return OrphanPayment.objects.create(
        psp_reference="TXSECOND1",
        amount_tzs=5_000,
        phone="255712345678",
        channel="MPESA-TZ",
        reason="second payment",
    )


def _deposit(user, *, amount: int = 5_000, phone: str = "+255712345678") -> DepositRequest:
    deposit, _created = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider=DepositRequest.Provider.ZENOPAY,
            wallet_id=user.test_wallet.pk,
            buyer_phone=phone,
            bank_id=None,
        ),
    )
    return deposit


def _page(orphan) -> str:
    return f"{QUEUE}{orphan.pk}/"


def test_compliance_sees_the_queue_and_others_are_refused(login, neema, nmb_admin, root, orphan):
    queue = login(neema).get(QUEUE)
    assert queue.status_code == 200
    assert "TXSECOND1" in queue.content.decode()
    assert f'href="{_page(orphan)}"' in queue.content.decode()
    assert f'href="{QUEUE}"' in login(neema).get("/backstage/").content.decode()

    assert login(nmb_admin).get(QUEUE).status_code == 403
    assert (
        login(nmb_admin).post(f"{_page(orphan)}dismiss/", {"dismiss-note": "x"}).status_code == 403
    )
    assert login(root).get(QUEUE).status_code == 403
    orphan.refresh_from_db()
    assert orphan.status == "unmatched"


def test_a_maker_asks_to_attach_and_a_colleague_approves_in_the_four_eyes_queue(
    login, neema, rehema, amina, orphan
):
    deposit = _deposit(amina)
    client = login(neema)
    page = client.get(_page(orphan)).content.decode()
    assert str(deposit.pk) in page  # offered as the deposit it may belong to

    asked = client.post(
        f"{_page(orphan)}attach/",
        {"attach-deposit_id": str(deposit.pk), "attach-evidence": "same phone, same amount"},
        follow=True,
    )

    request = DualControlRequest.objects.get(action="orphan_attach", target_id=str(orphan.pk))
    assert (request.maker, request.decision) == (neema, "pending")
    assert "Attach requested" in asked.content.decode()
    assert f'href="/backstage/four-eyes/{request.pk}/"' in asked.content.decode()
    orphan.refresh_from_db()
    assert orphan.status == "unmatched"  # nothing moves on one person's word

    login(rehema).post(f"/backstage/four-eyes/{request.pk}/approve/", {"approve-reason": "ok"})

    orphan.refresh_from_db()
    deposit.refresh_from_db()
    assert (orphan.status, orphan.matched_deposit_id, orphan.resolved_by) == (
        "matched",
        deposit.pk,
        rehema,
    )
    assert (deposit.status, deposit.psp_reference) == ("mint_pending", "TXSECOND1")
    assert set(
        AdminAction.objects.filter(target_id=str(orphan.pk)).values_list("action", "actor__email")
    ) == {
        ("orphan_attach.request", "neema@ntzs.test"),
        ("orphan_attach.approve", "rehema@ntzs.test"),
    }


@pytest.mark.parametrize(
    ("amount", "phone", "sentence"),
    [
        (4_000, "+255712345678", "the amounts must match"),
        (5_000, "+255713000111", "came from another phone than the deposit"),
    ],
)
def test_an_attach_to_a_deposit_of_another_amount_or_phone_is_refused_in_the_services_words(
    login, neema, amina, orphan, amount, phone, sentence
):
    deposit = _deposit(amina, amount=amount, phone=phone)

    refused = login(neema).post(
        f"{_page(orphan)}attach/",
        {"attach-deposit_id": str(deposit.pk), "attach-evidence": "looks like it"},
        follow=True,
    )

    assert sentence in refused.content.decode()
    assert not DualControlRequest.objects.filter(action="orphan_attach").exists()


def test_a_dismissal_needs_a_note_and_then_resolves_the_payment(login, neema, orphan):
    client = login(neema)

    refused = client.post(f"{_page(orphan)}dismiss/", {"dismiss-note": " "}, follow=True)
    assert "Dismissing an orphan payment needs a reason." in refused.content.decode()
    orphan.refresh_from_db()
    assert orphan.status == "unmatched"

    done = client.post(
        f"{_page(orphan)}dismiss/", {"dismiss-note": "refunded by M-Pesa reversal"}, follow=True
    )

    orphan.refresh_from_db()
    assert (orphan.status, orphan.note, orphan.resolved_by) == (
        "dismissed",
        "refunded by M-Pesa reversal",
        neema,
    )
    assert "is dismissed" in done.content.decode()
    assert AdminAction.objects.filter(action="orphan.dismiss", actor=neema).exists()
    assert "TXSECOND1" not in client.get(QUEUE).content.decode()
