"""API token authentication with an expiry (``API_TOKEN_TTL_DAYS``, counted from
``Token.created``). Tokens are also revoked when their user's password changes
(``accounts.services.passwords``)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from core.clock import now


class ExpiringTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token.created < now() - dt.timedelta(days=settings.API_TOKEN_TTL_DAYS):
            # Deleted, so a leaked old token is gone for good, not just refused today.
            token.delete()
            raise exceptions.AuthenticationFailed(
                _("This API token has expired; create a new one and use it instead."),
                code="token_expired",
            )
        return user, token
