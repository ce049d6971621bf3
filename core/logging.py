"""Keeps secrets out of log output and Django's error reports whatever code logs them
(DESIGN §10: secrets never appear in logs, error pages, the admin or API answers).

Three kinds of secret (named in settings):
- ``SECRET_SETTING_NAMES``: the whole value is a secret (keys, tokens, the Sentry DSN);
- ``SECRET_URL_SETTING_NAMES``: URLs whose credentials are secret — the password in the
  user-info part, and in RPC URLs the API key that providers put in the path or the query —
  while the scheme and host stay readable, so a log line still says which server failed;
- ``SECRET_ENV_NAMES``: keys that only management commands read from the environment.
Database passwords come from ``DATABASES`` (the decoded form of DATABASE_URL's password).
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import sentry_sdk
from celery import current_task
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from django_guid import get_guid
from pythonjsonlogger.json import JsonFormatter
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

REDACTED = "[redacted]"
# Tanzanian mobile numbers as text carries them (+255…, 255…, or the local 0… form), not
# inside a longer run of letters or digits (a hash, a UUID, an amount).
_PHONE = re.compile(r"(?<![\w+])(\+?255|0)([67])(\d{5})(\d{3})(?!\w)")
# A deposit named in a log line ("deposit=<uuid>"), lifted into its own JSON field.
_DEPOSIT = re.compile(
    r"\bdeposits?[=:]\s?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
# Shorter fragments are not treated as secrets: redacting "v2" or "8545" would garble every
# line while protecting nothing (a real key or password is longer).
MIN_SECRET_LENGTH = 8


def url_secrets(url: str) -> list[str]:
    """The secret parts of one URL: the password (and a user name that is really a key, as in
    a Sentry DSN or ``https://KEY@host``), path segments and query values long enough to be a
    key. Both the encoded and decoded forms, since either may be logged."""
    if not url or "://" not in url:
        return []
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return [url]  # unparseable: the whole value is the only safe answer
    # A user name without a password is a key (a Sentry DSN, https://KEY@host).
    found = [password or "", username if username and password is None else ""]
    found += parts.path.split("/")
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    values: set[str] = set()
    for fragment in found:
        for form in (fragment, unquote(fragment), quote(unquote(fragment), safe="")):
            if len(form) >= MIN_SECRET_LENGTH:
                values.add(form)
    return sorted(values)


def secret_values() -> list[str]:
    """Every secret value configured in this process, longest first (so a key is replaced
    whole before any shorter secret that happens to be part of it)."""
    from django.conf import settings

    if not settings.configured:
        return []
    values: set[str] = set()
    for name in getattr(settings, "SECRET_SETTING_NAMES", ()):
        values.update(_plain_secret(getattr(settings, name, "")))
    for name in getattr(settings, "SECRET_ENV_NAMES", ()):
        values.update(_plain_secret(os.environ.get(name, "").strip()))
    for name in getattr(settings, "SECRET_URL_SETTING_NAMES", ()):
        value = getattr(settings, name, "")
        if isinstance(value, str):
            values.update(url_secrets(value))
    for database in getattr(settings, "DATABASES", {}).values():
        values.update(_plain_secret(database.get("PASSWORD") or ""))
    return sorted(values, key=len, reverse=True)


def _plain_secret(value) -> list[str]:
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return []
    found = [value, quote(value, safe="")]
    if value.startswith("0x"):
        found.append(value[2:])
    return [v for v in found if len(v) >= MIN_SECRET_LENGTH]


def phones_redact(text: str) -> str:
    """+255712345678 → +2557*****678: a log reader can tell two numbers apart, not dial one."""
    return _PHONE.sub(lambda m: f"{m.group(1)}{m.group(2)}*****{m.group(4)}", text)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """Secret values replaced whole, and phone numbers masked."""
    for secret in secret_values() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return phones_redact(text)


class RedactSecretsFilter(logging.Filter):
    """Attached to every handler in settings.LOGGING: rewrites the message, and the traceback
    and stack text (formatters reuse ``exc_text`` when it is set), before any formatter runs."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values()
        message = record.getMessage()
        redacted = redact(message, secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per line. python-json-logger formats a traceback from the record's
    exception itself rather than from the text the redaction filter cleaned, and writes every
    ``extra`` field of a record (``django.request`` adds the request, with its query string),
    so the whole object is redacted again here."""

    def jsonify_log_record(self, log_data) -> str:
        return redact(super().jsonify_log_record(log_data))


def _task_id() -> str | None:
    task = current_task
    request = getattr(task, "request", None) if task else None
    return getattr(request, "id", None)


class LogContextFilter(logging.Filter):
    """Adds ``request_id`` (the X-Request-ID of the request, from django-guid), ``task_id``
    (the Celery task running) and ``deposit_id`` (when the line names one) to every record,
    for the JSON format; the message itself is left unchanged (DESIGN §13 lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = get_guid()
        record.task_id = _task_id()
        match = _DEPOSIT.search(record.getMessage())
        record.deposit_id = match.group(1) if match else None
        return True


def _scrub(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def sentry_event_scrub(event: dict, _hint: dict | None = None) -> dict:
    """Sentry's before_send and before_breadcrumb: no cookies, no headers that identify a
    person, no request body, and every string with secrets and phone numbers redacted."""
    request = event.get("request")
    if isinstance(request, dict):
        for field in ("cookies", "data", "env"):
            request.pop(field, None)
        headers = request.get("headers") or {}
        request["headers"] = {
            k: v
            for k, v in headers.items()
            if k.lower() not in {"cookie", "authorization", "x-forwarded-for", "x-real-ip"}
        }
    event.pop("user", None)
    return _scrub(event)


def sentry_init(*, dsn: str, environment: str) -> None:
    """Error reporting when SENTRY_DSN is set (nothing is sent otherwise): Django and Celery
    integrations, the SDK's default of no personal data (no user, cookies or client IP),
    and every event scrubbed."""
    if not dsn:
        return
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=sentry_event_scrub,
        before_breadcrumb=sentry_event_scrub,
        traces_sample_rate=0.0,
    )


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's error pages and error mails (settings.DEFAULT_EXCEPTION_REPORTER_FILTER): the
    stock filter hides settings whose names look secret (KEY, TOKEN, PASS...); this one also
    hides the URLs that carry credentials (REDIS_URL, the RPC URLs, the Celery broker, cache
    locations, the Sentry DSN), and any frame variable whose text contains a secret value."""

    hidden_settings = re.compile(
        r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DSN|DATABASE|REDIS|RPC_URL"
        r"|BROKER|LOCATION|EMAIL_URL|EMAIL_CONFIG",
        flags=re.IGNORECASE,
    )

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        secrets = secret_values()
        if not secrets:
            return variables
        cleaned = []
        for name, value in variables:
            try:
                text = repr(value)
            except Exception:  # a broken __repr__ must not break the report
                text = ""
            if any(secret in text for secret in secrets):
                value = self.cleansed_substitute
            cleaned.append((name, value))
        return cleaned


class SecretsExceptionReporter(ExceptionReporter):
    """Django's error page and error mail text (settings.DEFAULT_EXCEPTION_REPORTER), with any
    secret value that still got in (an exception message quoting a URL) replaced."""

    def get_traceback_html(self):
        return redact(str(super().get_traceback_html()))

    def get_traceback_text(self):
        return redact(str(super().get_traceback_text()))
