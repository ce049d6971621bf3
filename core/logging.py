"""Keeps secrets out of log output whatever code logs them (DESIGN §10)."""

from __future__ import annotations

import logging

REDACTED = "[redacted]"


def _secret_values() -> list[str]:
    from django.conf import settings

    if not settings.configured:
        return []
    values = []
    for name in getattr(settings, "SECRET_SETTING_NAMES", ()):
        value = getattr(settings, name, "")
        if isinstance(value, str) and len(value) >= 8:
            values.append(value)
            if value.startswith("0x"):
                values.append(value[2:])
    return values


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _secret_values()
        if not secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in secrets:
            redacted = redacted.replace(secret, REDACTED)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
