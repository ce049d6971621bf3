"""What follows a password change, whatever made it (reset link, admin, ``changepassword``):
the account's login locks are lifted and its API tokens are revoked.

It hangs on the User's save signals (``accounts.signals``) rather than on each view, because a
password can change through paths this app does not own (the admin's password form,
``manage.py changepassword``, a shell); a token that survived one of them would keep working
for someone who was meant to be shut out."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from accounts import throttle

logger = logging.getLogger(__name__)


def user_password_changed(*, user) -> int:
    """Revoke ``user``'s API tokens and unlock their logins. Returns the tokens deleted."""
    deleted, _ = Token.objects.filter(user=user).delete()
    throttle.account_unlock(account=user.email)
    logger.info("Password changed user=%s api_tokens_revoked=%d", user.pk, deleted)
    return deleted


def app_url_origin() -> tuple[str, str]:
    """(protocol, host) of ``settings.APP_URL``: every link we e-mail is built from it, never
    from a request's Host header (which the caller chooses)."""
    parts = urlsplit(settings.APP_URL)
    return parts.scheme or "https", parts.netloc


def password_reset_link(*, user) -> str:
    """A one-hour (PASSWORD_RESET_TIMEOUT) link that lets ``user`` choose a new password."""
    protocol, domain = app_url_origin()
    path = reverse(
        "accounts:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return f"{protocol}://{domain}{path}"
