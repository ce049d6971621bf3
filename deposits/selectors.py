"""Reads of the deposits app."""

from __future__ import annotations

import uuid

from django.utils.translation import gettext as _

from core.exceptions import NotFound
from deposits.models import DepositRequest


def _uuid(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
    except (TypeError, ValueError):
        raise NotFound(_("There is no deposit %(id)s.") % {"id": value}) from None


def deposit_get(*, deposit_id, for_update: bool = False) -> DepositRequest:
    queryset = DepositRequest.objects.select_related("bank", "user", "wallet")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    deposit = queryset.filter(pk=_uuid(deposit_id)).first()
    if deposit is None:
        raise NotFound(_("There is no deposit %(id)s.") % {"id": deposit_id})
    return deposit


def user_deposits(*, user):
    return DepositRequest.objects.filter(user=user).select_related("wallet", "bank")


def user_deposit_get(*, user, deposit_id) -> DepositRequest:
    """A customer sees only their own deposits: another's is "not found"."""
    try:
        pk = _uuid(deposit_id)
    except NotFound:
        raise
    deposit = user_deposits(user=user).filter(pk=pk).first()
    if deposit is None:
        raise NotFound(_("There is no deposit %(id)s.") % {"id": deposit_id})
    return deposit
