"""Content-Security-Policy (django-csp): present on every page, and no template needs an
inline script or style to work (DESIGN §10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from tests import factories
from tests.deposits.conftest import amina, settlement_bank  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [REPO / "templates", REPO / "deposits" / "sandbox" / "templates"]
DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
]


def _assert_strict_csp(response) -> None:
    policy = response.headers.get("Content-Security-Policy")
    assert policy, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = [d.strip() for d in policy.split(";")]
    for directive in DIRECTIVES:
        assert directive in directives, (directive, policy)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/login/",
        "/signup/",
        "/password-reset/",
        "/backstage/login/",
        "/sandbox/zenopay/phone/",
        "/healthz",
        "/readyz",
    ],
)
def test_anonymous_pages_carry_the_policy(client, path):
    response = client.get(path)
    assert response.status_code < 500
    _assert_strict_csp(response)


@pytest.mark.django_db
def test_customer_pages_carry_the_policy_and_render(client, amina):  # noqa: F811
    from deposits.services.intake import DepositInput, deposit_create

    deposit, _ = deposit_create(
        user=amina,
        data=DepositInput(
            amount_tzs=5_000,
            payment_provider="zenopay",
            wallet_id=amina.test_wallet.pk,
            buyer_phone="0712345678",
        ),
    )
    client.force_login(amina)
    for path in (
        "/",
        "/kyc/",
        "/wallets/",
        "/deposits/",
        "/deposits/new/",
        f"/deposits/{deposit.pk}/",
        f"/deposits/{deposit.pk}/status/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_strict_csp(response)
    home = client.get("/").content.decode()
    assert 'rel="stylesheet"' in home and "core/base.css" in home


@pytest.mark.django_db
def test_the_webhook_answer_carries_the_policy(client):
    response = client.post("/api/webhooks/zenopay", data=b"{}", content_type="application/json")
    assert response.status_code < 500
    _assert_strict_csp(response)


@pytest.mark.django_db
def test_backstage_pages_carry_the_policy(client, staff_otp_login):
    staff_otp_login(client, factories.super_admin())
    response = client.get("/backstage/")
    assert response.status_code < 500
    _assert_strict_csp(response)


def test_the_stylesheet_the_base_template_links_is_a_static_file():
    found = finders.find("core/base.css")
    assert found and "box-sizing" in Path(found).read_text()


INLINE = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE), "<script> without src"),
    (re.compile(r"<style\b", re.IGNORECASE), "<style>"),
    (re.compile(r"\sstyle\s*=", re.IGNORECASE), "a style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "an inline event handler (on...=)"),
    (re.compile(r"javascript:", re.IGNORECASE), "a javascript: URL"),
]


def _templates() -> list[Path]:
    return sorted(p for d in TEMPLATE_DIRS for p in d.rglob("*.html"))


def test_templates_are_found():
    assert len(_templates()) > 10  # the grep below looked at the real templates


@pytest.mark.parametrize("template", _templates(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_template_has_an_inline_script_or_style(template):
    text = template.read_text()
    for pattern, what in INLINE:
        match = pattern.search(text)
        assert match is None, f"{template.relative_to(REPO)} has {what}: {match.group(0)!r}"


@pytest.mark.django_db
def test_the_api_docs_run_under_the_policy_with_their_script_as_a_file(client, staff_otp_login):
    staff_otp_login(client, factories.super_admin())
    page = client.get("/api/docs/")
    assert page.status_code == 200
    _assert_strict_csp(page)
    html = page.content.decode()
    for pattern, what in INLINE[:3]:
        assert pattern.search(html) is None, what
    script_url = re.search(r'<script src="([^"]*script=[^"]*)"', html).group(1)
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
