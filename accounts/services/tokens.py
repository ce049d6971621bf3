"""API tokens (DRF ``authtoken``): revoked by a super admin, one person, since revoking only
takes access away (a leaked key must not wait for a second person). The key is a bearer
secret: nothing shows more than its first characters."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from accounts.services.common import InvalidInput
from core.exceptions import NotFound
from core.roles import SUPER_ADMIN, require_role
from core.services import admin_action_record
from core.text import text_free_storable

logger = logging.getLogger(__name__)

API_TOKEN_ADMIN_ROLES = (SUPER_ADMIN,)
API_TOKEN_PREFIX_LENGTH = 6  # enough to match a reported leaked key; far from guessable


@transaction.atomic
def api_token_revoke(*, user_id, actor, reason: str) -> None:
    require_role(actor, *API_TOKEN_ADMIN_ROLES, doing=_("revoke API tokens"))
    reason = text_free_storable(reason, max_length=1000)
    if not reason:
        raise InvalidInput(_("Give the reason for revoking the API token."), field="reason")
    token = Token.objects.select_for_update().filter(user_id=user_id).first()
    if token is None:
        raise NotFound(_("User %(id)s has no API token to revoke.") % {"id": user_id})
    prefix = token.key[:API_TOKEN_PREFIX_LENGTH]
    token.delete()
    admin_action_record(
        actor=actor,
        action="api_token.revoke",
        target_type="user",
        target_id=user_id,
        params={"key_prefix": prefix},
        outcome="revoked",
        reason=reason,
    )
    logger.warning("API token revoked user=%s prefix=%s by=%s", user_id, prefix, actor.pk)
