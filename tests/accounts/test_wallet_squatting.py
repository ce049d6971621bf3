"""Wallet squatting: an unverified registration blocks nobody, the first account to prove an
address wins and the other registrations of it close, registrations lapse after 24 hours, and
a person holds at most three open ones."""

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.urls import reverse
from eth_account.messages import encode_defunct

from accounts.models import Wallet
from accounts.selectors import user_wallets
from accounts.services import (
    wallet_challenge_create,
    wallet_register,
    wallet_verify_manual_request,
    wallet_verify_signature,
)
from core.exceptions import ConflictError, NotFound
from core.models import DualControlRequest
from core.services import dual_control_approve
from tests.factories import compliance_officer, customer, super_admin, wallet_key

pytestmark = pytest.mark.django_db

ADDRESS = wallet_key("shared").address
EVIDENCE = "Customer showed the wallet app on a video call, ticket SUP-9."
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def _verify_by_signature(user, wallet, key_name="shared"):
    challenge = wallet_challenge_create(user=user, wallet_id=wallet.pk)
    signed = wallet_key(key_name).sign_message(encode_defunct(text=challenge.message))
    return wallet_verify_signature(
        user=user,
        wallet_id=wallet.pk,
        challenge_id=challenge.pk,
        signature="0x" + bytes(signed.signature).hex(),
    )


@pytest.fixture
def juma():
    return customer(email="juma@ntzs.test")


@pytest.fixture
def amina():
    return customer(email="amina@ntzs.test")


def test_an_unverified_registration_does_not_block_the_address_for_another_account(juma, amina):
    squatted = wallet_register(user=juma, address=ADDRESS)

    mine = wallet_register(user=amina, address=ADDRESS)

    assert mine.pk != squatted.pk
    assert Wallet.objects.filter(address=ADDRESS).count() == 2


def test_the_first_to_verify_wins_and_the_other_registration_is_closed(juma, amina):
    first = wallet_register(user=juma, address=ADDRESS)
    second = wallet_register(user=amina, address=ADDRESS)

    _verify_by_signature(amina, second)

    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_verified
    assert first.verified_at is None and first.closed_at is not None
    assert "another account verified" in first.closed_reason
    assert list(user_wallets(juma)) == []
    neema = compliance_officer(email="neema@ntzs.test")
    with pytest.raises(ConflictError, match="closed"):
        wallet_verify_manual_request(user=juma, address=ADDRESS, evidence=EVIDENCE, maker=neema)
    with pytest.raises(ConflictError, match="closed"):
        wallet_challenge_create(user=juma, wallet_id=first.pk)
    with pytest.raises(ConflictError, match="already verified by another account"):
        wallet_register(user=juma, address=ADDRESS)
    assert not DualControlRequest.objects.exists()


def test_a_pending_manual_verification_of_the_losing_registration_is_refused_at_approval(
    juma, amina
):
    first = wallet_register(user=juma, address=ADDRESS)
    second = wallet_register(user=amina, address=ADDRESS)
    neema, salim = compliance_officer(email="neema@ntzs.test"), super_admin(email="s@ntzs.test")
    request = wallet_verify_manual_request(
        user=juma, address=ADDRESS, evidence=EVIDENCE, maker=neema
    )

    _verify_by_signature(amina, second)

    with pytest.raises(ConflictError, match="closed"):
        dual_control_approve(request_id=request.pk, checker=salim)
    first.refresh_from_db()
    request.refresh_from_db()
    assert (first.verified_at, request.decision) == (None, "pending")


def test_a_manual_verification_closes_the_other_registrations_too(juma, amina):
    first = wallet_register(user=juma, address=ADDRESS)
    second = wallet_register(user=amina, address=ADDRESS)
    neema, salim = compliance_officer(email="neema@ntzs.test"), super_admin(email="s@ntzs.test")
    request = wallet_verify_manual_request(
        user=amina, address=ADDRESS, evidence=EVIDENCE, maker=neema
    )

    dual_control_approve(request_id=request.pk, checker=salim)

    first.refresh_from_db()
    second.refresh_from_db()
    assert second.verification_method == Wallet.VerificationMethod.MANUAL
    assert first.closed_at is not None


def test_a_manual_verification_names_the_account_as_well_as_the_address(juma, amina):
    wallet_register(user=juma, address=ADDRESS)
    neema = compliance_officer(email="neema@ntzs.test")

    with pytest.raises(NotFound, match="has not registered"):
        wallet_verify_manual_request(user=amina, address=ADDRESS, evidence=EVIDENCE, maker=neema)


def test_the_database_keeps_one_verified_wallet_per_address(juma, amina):
    wallet_register(user=juma, address=ADDRESS)
    wallet_register(user=amina, address=ADDRESS)
    Wallet.objects.filter(user=juma).update(verified_at=T0, verification_method="manual")

    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(user=amina).update(verified_at=T0, verification_method="manual")


def test_an_unverified_registration_lapses_after_24_hours(juma):
    with time_machine.travel(T0, tick=False):
        wallet = wallet_register(user=juma, address=ADDRESS)
    with time_machine.travel(T0 + dt.timedelta(hours=23, minutes=59), tick=False):
        assert list(user_wallets(juma)) == [wallet]
        wallet_challenge_create(user=juma, wallet_id=wallet.pk)
    with time_machine.travel(T0 + dt.timedelta(hours=24, seconds=1), tick=False):
        assert list(user_wallets(juma)) == []
        with pytest.raises(ConflictError, match="lapsed"):
            wallet_challenge_create(user=juma, wallet_id=wallet.pk)
        again = wallet_register(user=juma, address=ADDRESS)
        _verify_by_signature(juma, again)

    wallet.refresh_from_db()
    again.refresh_from_db()
    assert again.pk != wallet.pk and again.is_verified
    assert wallet.closed_at is not None and wallet.verified_at is None


def test_a_signature_of_a_lapsed_registration_is_refused(juma):
    with time_machine.travel(T0, tick=False):
        wallet = wallet_register(user=juma, address=ADDRESS)
    with time_machine.travel(T0 + dt.timedelta(hours=23, minutes=55), tick=False):
        challenge = wallet_challenge_create(user=juma, wallet_id=wallet.pk)
    signed = wallet_key("shared").sign_message(encode_defunct(text=challenge.message))
    with (
        time_machine.travel(T0 + dt.timedelta(hours=24, minutes=1), tick=False),
        pytest.raises(ConflictError, match="lapsed"),
    ):
        wallet_verify_signature(
            user=juma,
            wallet_id=wallet.pk,
            challenge_id=challenge.pk,
            signature="0x" + bytes(signed.signature).hex(),
        )
    wallet.refresh_from_db()
    assert wallet.verified_at is None


def test_a_fourth_open_unverified_wallet_is_refused_until_one_lapses(juma):
    with time_machine.travel(T0, tick=False):
        for name in ("w1", "w2", "w3"):
            wallet_register(user=juma, address=wallet_key(name).address)
        with pytest.raises(ConflictError, match="3 wallets waiting for verification"):
            wallet_register(user=juma, address=wallet_key("w4").address)
        # Registering one of the three again is not a fourth.
        wallet_register(user=juma, address=wallet_key("w1").address)
    assert Wallet.objects.filter(user=juma).count() == 3
    with time_machine.travel(T0 + dt.timedelta(hours=24, seconds=1), tick=False):
        wallet_register(user=juma, address=wallet_key("w4").address)
    assert Wallet.objects.filter(user=juma).count() == 4


def test_verified_wallets_do_not_count_against_the_open_allowance(juma):
    for name in ("w1", "w2", "w3"):
        wallet = wallet_register(user=juma, address=wallet_key(name).address)
        _verify_by_signature(juma, wallet, key_name=name)

    wallet_register(user=juma, address=wallet_key("w4").address)

    assert Wallet.objects.filter(user=juma).count() == 4


@pytest.mark.parametrize("how", ["closed", "lapsed"])
def test_the_page_of_a_closed_or_lapsed_registration_is_not_found(client, juma, amina, how):
    with time_machine.travel(T0, tick=False):
        wallet = wallet_register(user=juma, address=ADDRESS)
        if how == "closed":
            _verify_by_signature(amina, wallet_register(user=amina, address=ADDRESS))
    client.force_login(juma)

    later = dt.timedelta(hours=1 if how == "closed" else 25)
    with time_machine.travel(T0 + later, tick=False):
        response = client.get(reverse("accounts:wallet_verify", args=[wallet.pk]))

    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_accounts_verifying_one_address_at_once_end_with_one_winner():
    import threading

    from django.db import connection

    people = [customer(email=f"person{i}@ntzs.test") for i in range(2)]
    wallets = [wallet_register(user=person, address=ADDRESS) for person in people]
    challenges = [
        wallet_challenge_create(user=p, wallet_id=w.pk)
        for p, w in zip(people, wallets, strict=True)
    ]
    signatures = [
        "0x"
        + bytes(wallet_key("shared").sign_message(encode_defunct(text=c.message)).signature).hex()
        for c in challenges
    ]
    barrier = threading.Barrier(2)
    results: list[str] = []

    def verify(i: int) -> None:
        barrier.wait()
        try:
            wallet_verify_signature(
                user=people[i],
                wallet_id=wallets[i].pk,
                challenge_id=challenges[i].pk,
                signature=signatures[i],
            )
            results.append("verified")
        except ConflictError:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=verify, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused", "verified"]
    assert Wallet.objects.verified().filter(address=ADDRESS).count() == 1
    assert Wallet.objects.filter(address=ADDRESS, closed_at__isnull=False).count() == 1
