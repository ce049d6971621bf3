import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Wallet
from accounts.services import InvalidInput, wallet_register
from core.exceptions import ConflictError
from tests.factories import WalletFactory, customer, wallet_key

pytestmark = pytest.mark.django_db

ADDRESS = wallet_key("amina").address  # EIP-55 checksummed


def _wrong_checksum(address: str) -> str:
    """The same address with the case of one letter flipped: a broken EIP-55 checksum."""
    i = next(i for i, ch in enumerate(address) if i > 1 and ch.isalpha())
    return address[:i] + address[i].swapcase() + address[i + 1 :]


def test_checksummed_address_is_registered():
    amina = customer()

    wallet = wallet_register(user=amina, address=ADDRESS)

    assert (wallet.user, wallet.chain, wallet.address) == (amina, "base", ADDRESS)
    assert not wallet.is_verified


@pytest.mark.parametrize(
    "spelling", [str.lower, lambda a: "0x" + a[2:].upper()], ids=["lowercase", "uppercase"]
)
def test_address_without_checksum_is_accepted_and_stored_checksummed(spelling):
    wallet = wallet_register(user=customer(), address=f"  {spelling(ADDRESS)} ")

    assert wallet.address == ADDRESS


def test_address_with_a_wrong_checksum_is_refused_with_a_clear_message():
    with pytest.raises(InvalidInput, match="wrong checksum") as exc:
        wallet_register(user=customer(), address=_wrong_checksum(ADDRESS))

    assert exc.value.field == "address"
    assert not Wallet.objects.exists()


@pytest.mark.parametrize(
    "address",
    [
        "",
        "0x1234",
        ADDRESS[2:],
        ADDRESS + "00",
        "0x" + "g" * 40,
        ADDRESS.replace("0x", "0X"),
        "alice.eth",
    ],
)
def test_malformed_address_is_refused(address):
    with pytest.raises(InvalidInput, match="40 hexadecimal characters"):
        wallet_register(user=customer(), address=address)

    assert not Wallet.objects.exists()


def test_zero_address_is_refused():
    with pytest.raises(InvalidInput, match="zero address"):
        wallet_register(user=customer(), address="0x" + "0" * 40)


def test_a_wallet_verified_by_another_user_is_refused():
    WalletFactory(user=customer(email="juma@ntzs.test"), address=ADDRESS, verified=True)

    with pytest.raises(ConflictError, match="already verified by another account"):
        wallet_register(user=customer(), address=ADDRESS.lower())

    assert Wallet.objects.count() == 1


def test_registering_ones_own_wallet_again_returns_it():
    amina = customer()
    first = wallet_register(user=amina, address=ADDRESS)

    again = wallet_register(user=amina, address=ADDRESS.lower())

    assert again == first
    assert Wallet.objects.count() == 1


def test_wallet_page_registers_and_leads_to_verification(client):
    amina = customer()
    client.force_login(amina)

    response = client.post(reverse("accounts:wallet_register"), {"address": ADDRESS.lower()})

    wallet = Wallet.objects.get(user=amina)
    assert wallet.address == ADDRESS
    assert response.status_code == 302
    assert response.url == reverse("accounts:wallet_verify", kwargs={"wallet_id": wallet.pk})


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("0x1234", "40 hexadecimal characters"),
        (_wrong_checksum(ADDRESS), "wrong checksum"),
        ("", "This field is required."),
    ],
)
def test_wallet_page_shows_bad_addresses_as_form_errors(client, address, message):
    client.force_login(customer())

    response = client.post(reverse("accounts:wallet_register"), {"address": address})

    assert response.status_code == 200
    assert message in response.context["form"].errors["address"][0]
    assert not Wallet.objects.exists()


def test_wallet_page_shows_a_wallet_of_another_user_as_a_form_error(client):
    WalletFactory(user=customer(email="juma@ntzs.test"), address=ADDRESS, verified=True)
    client.force_login(customer())

    response = client.post(reverse("accounts:wallet_register"), {"address": ADDRESS})

    assert response.status_code == 200
    assert "another account" in response.content.decode()


def test_wallet_form_without_csrf_token_is_forbidden():
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer())

    response = client.post(reverse("accounts:wallet_register"), {"address": ADDRESS})

    assert response.status_code == 403
    assert not Wallet.objects.exists()


def test_empty_post_shows_the_required_error(client):
    client.force_login(customer())

    response = client.post(reverse("accounts:wallet_register"), {})

    assert response.status_code == 200
    assert response.context["form"].errors["address"]
