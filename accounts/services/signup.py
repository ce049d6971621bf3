"""Sign-up of customer accounts, without revealing whether an address is registered.

``user_sign_up_request`` answers the same way for every address: a new one is sent a
confirmation link (valid ``SIGNUP_LINK_MAX_AGE_S``), a registered one a notice ("someone tried
to sign up with your address"). The account is **created at confirmation**, when its owner
chooses the password on the linked page (``user_sign_up_confirm``):

- no unconfirmed account ever exists, so no one can squat an address with a password of
  their own choosing (an inactive placeholder would also be shut out of "forgot password",
  which only serves active accounts), and there is nothing to clean up;
- the link carries only the address and the name, signed and dated (no password, not even a
  hash, travels by e-mail);
- both answers do the same work (one signature at most, one e-mail), so the timing says
  little more than the page does.

``user_sign_up`` creates an active account directly: the confirmation uses it, and so does the
demo tooling (``backstage.demo``), which creates the local demo people."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth import password_validation
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services.common import InvalidInput, _clean_full_name
from accounts.services.passwords import app_url_origin
from core.exceptions import ConflictError, ServiceError

logger = logging.getLogger(__name__)

SIGNUP_LINK_MAX_AGE_S = 24 * 60 * 60
_SIGNUP_SALT = "accounts.signup.confirm"


class SignUpLinkInvalid(ServiceError):
    """A confirmation link that was altered, cut short or has expired."""


class SignUpAlreadyConfirmed(ConflictError):
    """The link's address already has an account (the link was used, or the address was
    registered another way meanwhile)."""


@dataclass(frozen=True)
class SignUpClaim:
    email: str
    full_name: str


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("Enter a valid email address."), field="email") from None
    return email


def _link(path: str) -> str:
    protocol, domain = app_url_origin()
    return f"{protocol}://{domain}{path}"


@transaction.atomic
def user_sign_up(*, email: str, password: str, full_name: str = "") -> User:
    """Create an active account (after confirmation, or for the demo tooling)."""
    email = _clean_email(email)
    full_name = _clean_full_name(full_name, required=False)
    if User.objects.filter(email=email).exists():
        raise SignUpAlreadyConfirmed(
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
        raise SignUpAlreadyConfirmed(
            _("An account with this email already exists; log in or reset your password.")
        ) from None
    logger.info("User signed up user=%s", user.pk)
    return user


def user_sign_up_request(*, email: str, full_name: str = "") -> None:
    """Send a confirmation link to a new address, or a notice to a registered one.

    The caller shows "check your e-mail" either way; nothing here tells the two apart."""
    email = _clean_email(email)
    full_name = _clean_full_name(full_name, required=False)
    if User.objects.filter(email=email).exists():
        login_url = _link(reverse("accounts:login"))
        reset_url = _link(reverse("accounts:password_reset"))
        body = "\n".join(
            [
                _("Hello,"),
                "",
                _(
                    "Someone tried to sign up for nTZS with your address, %(email)s, which already "
                    "has an account. If it was you, log in or reset your password:"
                )
                % {"email": email},
                "",
                login_url,
                reset_url,
                "",
                _("If it was not you, ignore this e-mail: nothing has changed."),
            ]
        )
        send_mail(_("nTZS: someone tried to sign up with your address"), body, None, [email])
        logger.info("Sign-up attempted for a registered address; notice sent")
        return
    token = signing.dumps({"e": email, "n": full_name}, salt=_SIGNUP_SALT, compress=True)
    link = _link(reverse("accounts:signup_confirm", kwargs={"token": token}))
    body = "\n".join(
        [
            _("Hello,"),
            "",
            _(
                "To finish creating your nTZS account (%(email)s), open this link within 24 hours "
                "and choose your password:"
            )
            % {"email": email},
            "",
            link,
            "",
            _("If you did not sign up, ignore this e-mail: no account is created without it."),
        ]
    )
    send_mail(_("nTZS: confirm your e-mail address"), body, None, [email])
    logger.info("Sign-up confirmation link sent")


def user_sign_up_claim(*, token: str) -> SignUpClaim:
    """What a confirmation link says, if it is intact, not expired and not used yet."""
    try:
        data = signing.loads(token or "", salt=_SIGNUP_SALT, max_age=SIGNUP_LINK_MAX_AGE_S)
    except signing.SignatureExpired:
        raise SignUpLinkInvalid(
            _(
                "This confirmation link has expired (links work for 24 hours); sign up again to "
                "get a new one."
            )
        ) from None
    except (signing.BadSignature, ValueError, TypeError):
        raise SignUpLinkInvalid(
            _(
                "This confirmation link is not valid; copy the whole link from the e-mail, or "
                "sign up again."
            )
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("e"), str):
        raise SignUpLinkInvalid(_("This confirmation link is not valid; sign up again."))
    claim = SignUpClaim(email=data["e"], full_name=str(data.get("n") or ""))
    if User.objects.filter(email=claim.email.strip().lower()).exists():
        raise SignUpAlreadyConfirmed(
            _(
                "This address is already confirmed and its account exists; log in (or reset "
                "your password)."
            )
        )
    return claim


def user_sign_up_confirm(*, token: str, password: str) -> User:
    """Create the account named by a valid confirmation link, with the chosen password."""
    claim = user_sign_up_claim(token=token)
    return user_sign_up(email=claim.email, password=password, full_name=claim.full_name)
