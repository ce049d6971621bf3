"""Sign-up of customer accounts."""

from __future__ import annotations

import logging

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services.common import InvalidInput, _clean_full_name
from core.exceptions import ConflictError

logger = logging.getLogger(__name__)


@transaction.atomic
def user_sign_up(*, email: str, password: str, full_name: str = "") -> User:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("Enter a valid email address."), field="email") from None
    full_name = _clean_full_name(full_name, required=False)
    if User.objects.filter(email__iexact=email).exists():
        raise ConflictError(
            _("An account with this email already exists; log in or reset your password.")
        )
    candidate = User(email=email, full_name=full_name)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
    except IntegrityError:  # the same email signed up a moment ago
        raise ConflictError(
            _("An account with this email already exists; log in or reset your password.")
        ) from None
    logger.info("User signed up user=%s", user.pk)
    return user
