"""Login, sign-up and password-reset throttling, counted in Django's shared cache.

Built directly on Django's cache (Redis in tests and production, the database cache locally:
both shared by every process) rather than django-axes: axes's authentication backend demands
``request`` in every ``authenticate()`` call, and the per-account slow-down and the unlock on
password reset would need custom code on top of it anyway.

Rules (the numbers are the constants below, in this one place):

- **Lockout per (account, client address).** ``LOGIN_LOCKOUT_FAILURES`` wrong passwords for one
  account from one client within ``LOGIN_FAILURE_WINDOW_S`` lock that pair for
  ``LOGIN_LOCKOUT_S``: even the right password is refused until it expires. Attempts while
  locked do not extend the lock.
- **Per account alone, only a slow-down.** Once an account has ``ACCOUNT_SLOWDOWN_FAILURES``
  failures from anywhere within the window, each further failure makes *that client* wait
  ``ACCOUNT_SLOWDOWN_S`` before its next attempt for the account. It is never a lockout, and a
  client that has not failed itself is never made to wait: a single shared "one attempt every
  few seconds" slot would let an attacker's steady stream hold it and lock every super admin
  out during an incident from elsewhere.
- **A successful password reset (any password change) unlocks the account**: every pair lock,
  every failure counter and the slow-down, by moving the account to a new key generation.
- **Sign-up and password-reset requests** are limited per client address, and per target
  e-mail address (so no one can flood a mailbox); a refusal is a form message and sends
  nothing. The per-address limit counts requests, not accounts, so it reveals nothing about
  whether an address is registered.

Times are compared with ``core.clock.now()`` (stored in the values), so tests can move time;
the cache timeouts only make sure stale keys disappear.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.utils.translation import gettext as _

from core.clock import now
from core.http import client_throttle_key

LOGIN_LOCKOUT_FAILURES = 10  # wrong passwords per (account, client) ...
LOGIN_FAILURE_WINDOW_S = 15 * 60  # ... within this window ...
LOGIN_LOCKOUT_S = 15 * 60  # ... lock that pair for this long
ACCOUNT_SLOWDOWN_FAILURES = 20  # failures per account from anywhere within the window ...
ACCOUNT_SLOWDOWN_S = 5  # ... then a failing client waits this long before its next try

SIGNUP_MAX_PER_CLIENT = 10  # sign-up requests per client address per hour
SIGNUP_MAX_PER_EMAIL = 3  # sign-up requests naming one e-mail address per hour
PASSWORD_RESET_MAX_PER_CLIENT = 10  # reset requests per client address per hour
PASSWORD_RESET_MAX_PER_EMAIL = 3  # reset requests naming one e-mail address per hour
REQUEST_WINDOW_S = 60 * 60

logger = logging.getLogger("accounts")

_PREFIX = "throttle"
_GENERATION_TIMEOUT = None  # the account's generation must outlive every key that uses it


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is refused, as one sentence for the form, and for how long."""

    message: str
    retry_after_s: int


def _digest(value: str) -> str:
    # Keys hold a digest, not the typed text: bounded length, no odd characters, no e-mail
    # addresses in the cache.
    return hashlib.sha256(value.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]


def _ts() -> int:
    """Whole seconds since the epoch (core.clock, so tests can move time)."""
    return int(now().timestamp())


def _generation(account: str) -> str:
    return str(cache.get(f"{_PREFIX}:gen:{_digest(account)}", 0))


def _keys(account: str, client: str) -> dict[str, str]:
    acct, gen, cli = _digest(account), _generation(account), _digest(client_throttle_key(client))
    return {
        "pair_failures": f"{_PREFIX}:login:fail:{gen}:{acct}:{cli}",
        "pair_lock": f"{_PREFIX}:login:lock:{gen}:{acct}:{cli}",
        "account_failures": f"{_PREFIX}:login:acctfail:{gen}:{acct}",
        "pair_wait": f"{_PREFIX}:login:wait:{gen}:{acct}:{cli}",
    }


def _count(key: str, timeout: int) -> int:
    """Atomically add one to ``key`` (created with ``timeout``) and return the new count."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _remaining(key: str) -> int:
    until = cache.get(key)
    if until is None:
        return 0
    return max(int(until) - _ts(), 0)


def login_refusal(*, account: str, client: str) -> Refusal | None:
    """Whether a login attempt for ``account`` from ``client`` must be refused unchecked."""
    keys = _keys(account, client)
    locked = _remaining(keys["pair_lock"])
    if locked:
        minutes = max(1, (locked + 59) // 60)
        return Refusal(
            _(
                "Too many failed attempts from here; this login is locked for %(minutes)d more "
                "minute(s). Wait, or reset your password to unlock it now."
            )
            % {"minutes": minutes},
            locked,
        )
    wait = _remaining(keys["pair_wait"])
    if wait:
        return Refusal(
            _("Too many failed attempts for this account; wait %(seconds)d seconds and try again.")
            % {"seconds": wait},
            wait,
        )
    return None


def login_failed(*, account: str, client: str) -> None:
    """Count a wrong password (or second-factor code) and log it: the runbook's "auth
    failures" are found by ``Login failed`` and ``Login locked``. The account is named by its
    digest (the throttle's key), never by the typed address."""
    keys = _keys(account, client)
    pair = _count(keys["pair_failures"], LOGIN_FAILURE_WINDOW_S)
    total = _count(keys["account_failures"], LOGIN_FAILURE_WINDOW_S)
    account_id, client_id = _digest(account)[:12], client_throttle_key(client)
    logger.warning(
        "Login failed account=%s client=%s failures_from_client=%d failures_in_window=%d",
        account_id,
        client_id,
        pair,
        total,
    )
    if pair >= LOGIN_LOCKOUT_FAILURES:
        cache.set(keys["pair_lock"], _ts() + LOGIN_LOCKOUT_S, timeout=LOGIN_LOCKOUT_S + 60)
        cache.delete(keys["pair_failures"])  # after the lock, a fresh allowance
        logger.warning(
            "Login locked account=%s client=%s for %d s", account_id, client_id, LOGIN_LOCKOUT_S
        )
    elif total >= ACCOUNT_SLOWDOWN_FAILURES:
        cache.set(keys["pair_wait"], _ts() + ACCOUNT_SLOWDOWN_S, timeout=ACCOUNT_SLOWDOWN_S + 60)


def login_succeeded(*, account: str, client: str) -> None:
    """The right password from this client: its own failures are forgiven (not others')."""
    keys = _keys(account, client)
    cache.delete_many([keys["pair_failures"], keys["pair_wait"]])


def account_unlock(*, account: str) -> None:
    """Forget every lock, failure count and slow-down of ``account`` (after a password change).

    The per-client keys cannot be listed through Django's cache API, so the account moves to a
    new generation and the old keys are never read again (they expire on their own)."""
    cache.set(f"{_PREFIX}:gen:{_digest(account)}", uuid.uuid4().hex, timeout=_GENERATION_TIMEOUT)


def _request_refusal(
    kind: str, *, client: str, email: str, per_client: int, per_email: int
) -> Refusal | None:
    window = _ts() // REQUEST_WINDOW_S
    client_key = f"{_PREFIX}:{kind}:client:{window}:{_digest(client_throttle_key(client))}"
    email_key = f"{_PREFIX}:{kind}:email:{window}:{_digest(email)}"
    # Count first, compare after: the increment is atomic, so concurrent requests cannot all
    # slip under the limit.
    client_count = _count(client_key, REQUEST_WINDOW_S * 2)
    email_count = _count(email_key, REQUEST_WINDOW_S * 2) if email else 0
    if client_count > per_client or email_count > per_email:
        left = (window + 1) * REQUEST_WINDOW_S - _ts()
        return Refusal(
            _("Too many requests; nothing was sent. Try again in %(minutes)d minute(s).")
            % {"minutes": max(1, (left + 59) // 60)},
            left,
        )
    return None


def signup_request_refusal(*, client: str, email: str) -> Refusal | None:
    """Count a sign-up request; a refusal means: show the message, send nothing."""
    return _request_refusal(
        "signup",
        client=client,
        email=email,
        per_client=SIGNUP_MAX_PER_CLIENT,
        per_email=SIGNUP_MAX_PER_EMAIL,
    )


def password_reset_request_refusal(*, client: str, email: str) -> Refusal | None:
    """Count a password-reset request; a refusal means: show the message, send nothing."""
    return _request_refusal(
        "reset",
        client=client,
        email=email,
        per_client=PASSWORD_RESET_MAX_PER_CLIENT,
        per_email=PASSWORD_RESET_MAX_PER_EMAIL,
    )
