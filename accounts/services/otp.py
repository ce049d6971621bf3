"""The staff second factor: a TOTP authenticator (django-otp) and ten one-time recovery codes.

Enrolment happens once, at the first Backstage login of a staff member without a confirmed
device: the secret is shown (QR code and text), one code from the app confirms it, and the
recovery codes are shown once. Resetting a lost authenticator is a super admin's job in the
admin (delete the person's devices; they enrol again at their next login)."""

from __future__ import annotations

import base64
import logging

from django.db import transaction
from django.utils.translation import gettext as _
from django_otp import devices_for_user, verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.exceptions import ConflictError, ServiceError
from core.services import admin_action_record

logger = logging.getLogger(__name__)

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "authenticator"
RECOVERY_DEVICE_NAME = "recovery codes"


def otp_confirmed_devices(user) -> list:
    """The user's confirmed devices, authenticators first (recovery codes are the fallback)."""
    devices = list(devices_for_user(user, confirmed=True))
    return sorted(devices, key=lambda d: isinstance(d, StaticDevice))


def otp_enrolment_device(*, user) -> TOTPDevice:
    """The unconfirmed authenticator being set up (the same one on every reload, so the QR
    code scanned a moment ago stays valid)."""
    if otp_confirmed_devices(user):
        raise ConflictError(
            _(
                "Your authenticator is already set up; enter a code from it (or a recovery "
                "code). Lost it? Ask a super admin to reset it."
            )
        )
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def otp_secret_text(device: TOTPDevice) -> str:
    """The secret as people type it into an authenticator app (base32, in groups of four)."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def otp_enrol_confirm(*, user, token: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the authenticator with one code from it; make and return the recovery codes
    (shown once: only their use is stored, by deleting them)."""
    device = otp_enrolment_device(user=user)
    if not verify_token(user, device.persistent_id, token):
        raise ServiceError(
            _(
                "That code did not match; check the time on your phone and enter the code the app "
                "shows now."
            )
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(pk=device.pk, confirmed=False).update(confirmed=True)
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        StaticDevice.objects.filter(user=user).delete()
        recovery = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
        codes = [StaticToken.random_token() for _i in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=recovery, token=c) for c in codes)
        admin_action_record(
            actor=user,
            action="staff_otp.enrol",
            target_type="user",
            target_id=user.pk,
            params={"recovery_codes": RECOVERY_CODE_COUNT},
            outcome="enrolled",
        )
    device.refresh_from_db()
    logger.info("Staff second factor enrolled user=%s", user.pk)
    return device, codes


def otp_verify(*, user, token: str):
    """The confirmed device that accepts ``token`` (a recovery code is used up), or None."""
    token = "".join((token or "").split()).lower()
    if not token or len(token) > 16:
        return None
    for device in otp_confirmed_devices(user):
        verified = verify_token(user, device.persistent_id, token)
        if verified is not None:
            return verified
    return None
