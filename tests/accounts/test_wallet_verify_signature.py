import datetime as dt
import re

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from eth_account.messages import encode_defunct

from accounts.models import Wallet, WalletChallenge
from accounts.selectors import user_verified_wallets
from accounts.services import (
    InvalidInput,
    wallet_challenge_create,
    wallet_verify_signature,
)
from core.exceptions import ConflictError, NotFound, PermissionRefused
from tests.factories import WalletFactory, customer, wallet_key

pytestmark = pytest.mark.django_db


def sign(key_name: str, message: str) -> str:
    signed = wallet_key(key_name).sign_message(encode_defunct(text=message))
    return "0x" + bytes(signed.signature).hex()


@pytest.fixture
def amina():
    return customer()


@pytest.fixture
def wallet(amina):
    return WalletFactory(user=amina, key_name="amina")


def test_challenge_message_binds_account_wallet_chain_nonce_and_expiry(amina, wallet):
    with time_machine.travel(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC), tick=False):
        challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)

    assert f"Account: {amina.pk}" in challenge.message
    assert f"Wallet: {wallet.address}" in challenge.message
    assert f"Chain ID: {settings.CHAIN_ID}" in challenge.message
    assert f"Nonce: {challenge.nonce}" in challenge.message
    assert "Expires: 2026-03-01 09:10:00 UTC" in challenge.message
    assert challenge.expires_at == dt.datetime(2026, 3, 1, 9, 10, tzinfo=dt.UTC)
    assert re.fullmatch(r"[0-9a-f]{32}", challenge.nonce)


def test_each_challenge_has_its_own_nonce(amina, wallet):
    first = wallet_challenge_create(user=amina, wallet_id=wallet.pk)
    second = wallet_challenge_create(user=amina, wallet_id=wallet.pk)

    assert first.nonce != second.nonce


def test_good_signature_verifies_the_wallet(amina, wallet):
    challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)

    verified = wallet_verify_signature(
        user=amina,
        wallet_id=wallet.pk,
        challenge_id=challenge.pk,
        signature=sign("amina", challenge.message),
    )

    assert verified.is_verified
    assert verified.verification_method == Wallet.VerificationMethod.MESSAGE_SIGNATURE
    assert list(user_verified_wallets(amina)) == [wallet]
    challenge.refresh_from_db()
    assert challenge.used_at is not None


def test_signature_without_0x_and_with_v_0_or_1_is_accepted(amina, wallet):
    challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)
    raw = bytes.fromhex(sign("amina", challenge.message)[2:])
    ledger_style = (raw[:64] + bytes([raw[64] - 27])).hex()

    verified = wallet_verify_signature(
        user=amina, wallet_id=wallet.pk, challenge_id=challenge.pk, signature=ledger_style
    )

    assert verified.is_verified


def test_signature_by_another_key_is_refused(amina, wallet):
    challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)

    with pytest.raises(InvalidInput, match=f"made by the wallet {wallet_key('mallory').address}"):
        wallet_verify_signature(
            user=amina,
            wallet_id=wallet.pk,
            challenge_id=challenge.pk,
            signature=sign("mallory", challenge.message),
        )

    wallet.refresh_from_db()
    challenge.refresh_from_db()
    assert not wallet.is_verified
    assert challenge.used_at is None


def test_signature_of_a_different_text_is_refused(amina, wallet):
    challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)

    with pytest.raises(InvalidInput, match="made by the wallet"):
        wallet_verify_signature(
            user=amina,
            wallet_id=wallet.pk,
            challenge_id=challenge.pk,
            signature=sign("amina", challenge.message + " "),
        )

    wallet.refresh_from_db()
    assert not wallet.is_verified


def test_challenge_of_another_user_is_refused(amina, wallet):
    juma = customer(email="juma@ntzs.test")
    juma_wallet = WalletFactory(user=juma, key_name="amina-too")
    juma_challenge = wallet_challenge_create(user=juma, wallet_id=juma_wallet.pk)

    # Amina presents Juma's message (signed by Juma's key) against her own wallet...
    with pytest.raises(PermissionRefused, match="not issued for this wallet and account"):
        wallet_verify_signature(
            user=amina,
            wallet_id=wallet.pk,
            challenge_id=juma_challenge.pk,
            signature=sign("amina-too", juma_challenge.message),
        )
    # ...or against Juma's wallet.
    with pytest.raises(NotFound):
        wallet_verify_signature(
            user=amina,
            wallet_id=juma_wallet.pk,
            challenge_id=juma_challenge.pk,
            signature=sign("amina-too", juma_challenge.message),
        )

    assert not Wallet.objects.filter(verified_at__isnull=False).exists()


def test_message_signed_for_another_user_does_not_verify_the_same_address(amina):
    """A signature over Juma's message for an address cannot be replayed by Amina."""
    juma = customer(email="juma@ntzs.test")
    juma_wallet = WalletFactory(user=juma, key_name="shared")
    juma_challenge = wallet_challenge_create(user=juma, wallet_id=juma_wallet.pk)
    stolen = sign("shared", juma_challenge.message)
    amina_wallet = WalletFactory(user=amina, key_name="amina")
    amina_challenge = wallet_challenge_create(user=amina, wallet_id=amina_wallet.pk)

    with pytest.raises(InvalidInput, match="made by the wallet"):
        wallet_verify_signature(
            user=amina, wallet_id=amina_wallet.pk, challenge_id=amina_challenge.pk, signature=stolen
        )


def test_expired_challenge_is_refused(amina, wallet):
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)
    signature = sign("amina", challenge.message)

    with time_machine.travel(start + dt.timedelta(minutes=10, seconds=1), tick=False):
        with pytest.raises(ConflictError, match="expired"):
            wallet_verify_signature(
                user=amina, wallet_id=wallet.pk, challenge_id=challenge.pk, signature=signature
            )

    wallet.refresh_from_db()
    assert not wallet.is_verified


def test_challenge_just_before_expiry_still_works(amina, wallet):
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)
    with time_machine.travel(start + dt.timedelta(minutes=9, seconds=59), tick=False):
        verified = wallet_verify_signature(
            user=amina,
            wallet_id=wallet.pk,
            challenge_id=challenge.pk,
            signature=sign("amina", challenge.message),
        )

    assert verified.is_verified


def test_reused_challenge_is_refused(amina, wallet):
    challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)
    signature = sign("amina", challenge.message)
    wallet_verify_signature(
        user=amina, wallet_id=wallet.pk, challenge_id=challenge.pk, signature=signature
    )

    with pytest.raises(ConflictError, match="already been used"):
        wallet_verify_signature(
            user=amina, wallet_id=wallet.pk, challenge_id=challenge.pk, signature=signature
        )


def test_used_challenge_cannot_verify_the_wallet_again_after_it_was_unverified(amina, wallet):
    challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)
    signature = sign("amina", challenge.message)
    wallet_verify_signature(
        user=amina, wallet_id=wallet.pk, challenge_id=challenge.pk, signature=signature
    )
    Wallet.objects.filter(pk=wallet.pk).update(verified_at=None, verification_method="")

    with pytest.raises(ConflictError, match="already been used"):
        wallet_verify_signature(
            user=amina, wallet_id=wallet.pk, challenge_id=challenge.pk, signature=signature
        )

    wallet.refresh_from_db()
    assert not wallet.is_verified


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "0x",
        "0x1234",
        "not a signature",
        "0x" + "zz" * 65,
        "0x" + "00" * 65,
        "0x" + "ff" * 65,
        "0x" + "ab" * 66,
    ],
)
def test_malformed_signature_is_refused(amina, wallet, signature):
    challenge = wallet_challenge_create(user=amina, wallet_id=wallet.pk)

    with pytest.raises(InvalidInput) as exc:
        wallet_verify_signature(
            user=amina, wallet_id=wallet.pk, challenge_id=challenge.pk, signature=signature
        )

    assert exc.value.field == "signature"
    wallet.refresh_from_db()
    assert not wallet.is_verified


def test_no_challenge_for_a_verified_wallet(amina):
    verified = WalletFactory(user=amina, verified=True)

    with pytest.raises(ConflictError, match="already verified"):
        wallet_challenge_create(user=amina, wallet_id=verified.pk)


# --- the page ------------------------------------------------------------------------------


def _page(wallet):
    return reverse("accounts:wallet_verify", kwargs={"wallet_id": wallet.pk})


def test_page_shows_the_message_to_sign_and_keeps_it_on_reload(client, amina, wallet):
    client.force_login(amina)

    first = client.get(_page(wallet))
    second = client.get(_page(wallet))

    challenge = first.context["challenge"]
    assert first.status_code == 200
    assert challenge.message in first.content.decode()
    assert second.context["challenge"] == challenge
    assert WalletChallenge.objects.count() == 1
    assert "accounts/wallet_verify.js" in first.content.decode()


def test_page_verifies_a_pasted_signature(client, amina, wallet):
    client.force_login(amina)
    challenge = client.get(_page(wallet)).context["challenge"]

    response = client.post(
        _page(wallet), {"challenge": challenge.pk, "signature": sign("amina", challenge.message)}
    )

    assert response.status_code == 302
    assert response.url == reverse("accounts:home")
    wallet.refresh_from_db()
    assert wallet.verification_method == Wallet.VerificationMethod.MESSAGE_SIGNATURE


def test_page_shows_another_keys_signature_as_a_form_error(client, amina, wallet):
    client.force_login(amina)
    challenge = client.get(_page(wallet)).context["challenge"]

    response = client.post(
        _page(wallet), {"challenge": challenge.pk, "signature": sign("mallory", challenge.message)}
    )

    assert response.status_code == 200
    assert "made by the wallet" in response.context["form"].errors["signature"][0]
    wallet.refresh_from_db()
    assert not wallet.is_verified


@pytest.mark.parametrize("signature", ["", "0x1234", "0x" + "00" * 65, "<script>"])
def test_page_shows_a_malformed_signature_as_a_form_error(client, amina, wallet, signature):
    client.force_login(amina)
    challenge = client.get(_page(wallet)).context["challenge"]

    response = client.post(_page(wallet), {"challenge": challenge.pk, "signature": signature})

    assert response.status_code == 200
    assert response.context["form"].errors["signature"]
    assert "<script>" not in response.content.decode().split("</header>")[1].split("<script")[0]


def test_page_refuses_an_expired_message_and_offers_a_new_one(client, amina, wallet):
    client.force_login(amina)
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        challenge = client.get(_page(wallet)).context["challenge"]
    with time_machine.travel(start + dt.timedelta(minutes=11), tick=False):
        response = client.post(
            _page(wallet),
            {"challenge": challenge.pk, "signature": sign("amina", challenge.message)},
        )

    assert response.status_code == 200
    assert "expired" in str(response.context["form"].non_field_errors())
    assert response.context["challenge"] != challenge
    wallet.refresh_from_db()
    assert not wallet.is_verified


def test_page_refuses_a_reused_message(client, amina, wallet):
    client.force_login(amina)
    challenge = client.get(_page(wallet)).context["challenge"]
    data = {"challenge": challenge.pk, "signature": sign("amina", challenge.message)}
    client.post(_page(wallet), data)
    Wallet.objects.filter(pk=wallet.pk).update(verified_at=None, verification_method="")

    response = client.post(_page(wallet), data)

    assert response.status_code == 200
    assert "already been used" in str(response.context["form"].non_field_errors())


def test_page_refuses_another_users_challenge(client, amina, wallet):
    juma = customer(email="juma@ntzs.test")
    juma_wallet = WalletFactory(user=juma, key_name="juma")
    juma_challenge = wallet_challenge_create(user=juma, wallet_id=juma_wallet.pk)
    client.force_login(amina)

    response = client.post(
        _page(wallet),
        {"challenge": juma_challenge.pk, "signature": sign("juma", juma_challenge.message)},
    )

    assert response.status_code == 200
    assert "not issued for this wallet" in str(response.context["form"].non_field_errors())
    assert not Wallet.objects.filter(verified_at__isnull=False).exists()


def test_page_with_a_tampered_challenge_field_is_a_form_error(client, amina, wallet):
    client.force_login(amina)

    response = client.post(_page(wallet), {"challenge": "nope", "signature": "0x12"})

    assert response.status_code == 200
    assert response.context["form"].errors


@pytest.mark.parametrize("method", ["get", "post"])
def test_page_of_another_users_wallet_is_not_found(client, amina, method):
    juma_wallet = WalletFactory(user=customer(email="juma@ntzs.test"))
    client.force_login(amina)

    response = getattr(client, method)(_page(juma_wallet))

    assert response.status_code == 404
    assert not WalletChallenge.objects.exists()


def test_page_of_a_verified_wallet_says_so(client, amina):
    verified = WalletFactory(user=amina, verified=True)
    client.force_login(amina)

    response = client.get(_page(verified))

    assert response.status_code == 200
    assert "Verified" in response.content.decode()
    assert not WalletChallenge.objects.exists()
