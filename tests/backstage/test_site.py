"""Backstage is the one admin site: its frame (title, environment banner, open alerts) and its
languages."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from backstage.admin import site as backstage_site
from backstage.admin.site import BackstageSite
from backstage.environment import backstage_environment
from core.clock import now
from core.models import Alert
from minting.models import SignerAccount
from tests.backstage.conftest import transfer

pytestmark = pytest.mark.django_db


def _admin_sites_mounted(patterns) -> set[AdminSite]:
    found = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found |= _admin_sites_mounted(pattern.url_patterns)
            continue
        assert isinstance(pattern, URLPattern)
        callback = pattern.callback
        site = getattr(callback, "admin_site", None)
        if site is None and hasattr(callback, "model_admin"):
            site = callback.model_admin.admin_site
        if site is None and isinstance(getattr(callback, "__self__", None), AdminSite):
            site = callback.__self__
        if site is not None:
            found.add(site)
    return found


def test_backstage_is_the_only_admin_site_mounted():
    assert resolve("/backstage/").func.admin_site is backstage_site
    assert isinstance(backstage_site, BackstageSite)
    assert _admin_sites_mounted(get_resolver().url_patterns) == {backstage_site}
    assert admin.site is not backstage_site


def test_every_registered_screen_is_on_backstage():
    models = {model._meta.label for model in backstage_site._registry}
    assert {"deposits.DepositRequest", "core.AdminAction", "minting.MintAttempt"} <= models
    assert "authtoken.TokenProxy" not in models  # a token's key is a secret: point 8's screen


def test_the_login_page_carries_the_title_and_the_local_banner(client):
    response = client.get(reverse("admin:login"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "nTZS Backstage" in page
    assert 'class="backstage-env backstage-env-local"' in page
    assert '<strong class="backstage-env-name">LOCAL</strong>' in page
    assert "chain 31337 · test profile" in page


def test_the_banner_says_testnet_on_base_sepolia(client, settings):
    settings.CHAIN_ID = 84532

    page = client.get(reverse("admin:login")).content.decode()

    assert '<strong class="backstage-env-name">TESTNET</strong>' in page
    assert "LOCAL" not in page


@pytest.mark.parametrize(
    ("chain_id", "profile", "expected"),
    [
        (31337, "local", "LOCAL"),
        (84532, "production", "TESTNET"),  # a rehearsal on the test network
        (8453, "production", "PRODUCTION"),
        (8453, "test", "PRODUCTION"),  # the chain decides: Base mainnet is real money
        (10, "production", "PRODUCTION"),  # an unknown chain under production settings
        (10, "test", "TESTNET"),
    ],
)
def test_the_environment_comes_from_the_chain_then_the_profile(
    settings, chain_id, profile, expected
):
    settings.CHAIN_ID = chain_id
    settings.PROFILE = profile

    assert backstage_environment().name == expected


def test_the_alerts_banner_shows_open_alerts_and_not_resolved_ones(login, neema):
    Alert.objects.create(kind="minter gas low", detail="0.0001 ETH left")
    Alert.objects.create(kind="psp reference conflict", key="TX-1", resolved_at=now())
    client = login(neema)

    page = client.get(reverse("admin:index")).content.decode()

    assert "1 open alert" in page
    assert "minter gas low" in page
    assert "psp reference conflict" not in page
    assert f"{reverse('admin:core_alert_changelist')}?resolved_at__isnull=True" in page


def test_the_alerts_link_lists_the_open_alerts(login, neema):
    Alert.objects.create(kind="minter gas low")
    Alert.objects.create(kind="psp reference conflict", key="TX-1", resolved_at=now())
    client = login(neema)

    response = client.get(f"{reverse('admin:core_alert_changelist')}?resolved_at__isnull=True")

    page = response.content.decode()
    assert response.status_code == 200
    assert "minter gas low" in page
    assert "TX-1" not in page


def test_no_alert_is_shown_before_the_second_factor(client, neema):
    Alert.objects.create(kind="minter gas low")
    client.force_login(neema)  # password accepted, no TOTP code yet

    response = client.get(reverse("admin:index"), follow=True)

    page = response.content.decode()
    assert response.redirect_chain[-1][0].startswith(reverse("staff_otp_enrol"))
    assert "LOCAL" in page  # the frame is Backstage's
    assert "minter gas low" not in page


def test_the_index_names_models_in_kiswahili_with_the_language_cookie(login, neema):
    client = login(neema)
    english = client.get(reverse("admin:index")).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"

    kiswahili = client.get(reverse("admin:index")).content.decode()

    assert "Four-eyes requests" in english
    assert "Maombi ya idhini ya watu wawili" in kiswahili
    assert "Mabadiliko ya hali ya amana" in kiswahili
    assert "Four-eyes requests" not in kiswahili


def test_a_changelist_names_its_columns_in_kiswahili(login, neema, amina, nmb):
    transfer(amina, nmb)
    client = login(neema)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"

    page = client.get(reverse("admin:deposits_depositrequest_changelist")).content.decode()

    assert "Barua pepe ya mteja" in page
    assert "Kiasi (TZS)" in page


def test_the_minting_ledgers_are_named_in_kiswahili_too(login, neema):
    SignerAccount.objects.create(address="0x" + "ab" * 20, chain_id=31337)
    url = reverse("admin:minting_signeraccount_changelist")
    client = login(neema)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "sw"

    page = client.get(url).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the last request's language stays
    english = client.get(url).content.decode()

    assert "Miamala ya utengenezaji" in page  # a model, in the sidebar
    assert "Akaunti za watia saini" in page  # this one
    assert "Nonce inayofuata" in page and "Kitambulisho cha mnyororo" in page  # its columns
    assert "Mint transactions" not in page and "Next nonce" not in page
    assert "Next nonce" in english and "Mint transactions" in english
