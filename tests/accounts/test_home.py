import pytest
from django.urls import reverse

from accounts.selectors import user_kyc_approved, user_onboarding_state, user_verified_wallets
from tests.factories import KycCaseFactory, WalletFactory, customer

pytestmark = pytest.mark.django_db


def test_new_customer_is_told_to_verify_identity_and_add_a_wallet(client):
    amina = customer()
    client.force_login(amina)

    response = client.get(reverse("accounts:home"))

    body = response.content.decode()
    assert response.status_code == 200
    assert reverse("accounts:kyc_submit") in body
    assert reverse("accounts:wallet_register") in body
    assert not response.context["state"].ready_to_deposit


def test_home_links_an_unverified_wallet_to_its_verification(client):
    amina = customer()
    wallet = WalletFactory(user=amina)
    KycCaseFactory(user=amina)
    client.force_login(amina)

    response = client.get(reverse("accounts:home"))

    body = response.content.decode()
    assert reverse("accounts:wallet_verify", kwargs={"wallet_id": wallet.pk}) in body
    assert "Under review" in body


def test_home_shows_ready_when_kyc_approved_and_wallet_verified(client):
    amina = customer()
    KycCaseFactory(user=amina, approved=True)
    WalletFactory(user=amina, verified=True)
    client.force_login(amina)

    response = client.get(reverse("accounts:home"))

    assert response.context["state"].ready_to_deposit
    assert "You are ready" in response.content.decode()


def test_home_shows_only_ones_own_wallets(client):
    amina = customer()
    other = WalletFactory(user=customer(email="juma@ntzs.test"))
    client.force_login(amina)

    response = client.get(reverse("accounts:home"))

    assert other.address not in response.content.decode()


def test_kyc_stays_approved_after_a_later_rejected_case():
    amina = customer()
    KycCaseFactory(user=amina, approved=True)
    KycCaseFactory(user=amina, rejected=True)

    assert user_kyc_approved(amina)
    assert user_onboarding_state(amina).kyc_status == "approved"


def test_only_verified_wallets_are_mint_destinations():
    amina = customer()
    verified = WalletFactory(user=amina, verified=True)
    WalletFactory(user=amina)
    WalletFactory(user=customer(email="juma@ntzs.test"), verified=True)

    assert list(user_verified_wallets(amina)) == [verified]


def test_language_switch_in_the_layout_sets_kiswahili(client):
    client.force_login(customer())
    home = client.get(reverse("accounts:home"))
    assert reverse("set_language") in home.content.decode()

    response = client.post(reverse("set_language"), {"language": "sw", "next": "/"})

    assert response.status_code == 302
    assert response.cookies["django_language"].value == "sw"
