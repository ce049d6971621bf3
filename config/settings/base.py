"""Settings shared by every profile. Values come from the environment (DESIGN §10).

Each profile module (local, test, production) sets PROFILE, imports this module's names and
finishes with ``finalize(globals())``, which applies the per-profile rules.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django_guid.integrations import CeleryIntegration as DjangoGuidCeleryIntegration

from config.beat import beat_schedule
from core.endpoints import public_endpoint_refusal
from core.env import (
    env,
    raw,
    read_address,
    read_address_map,
    read_bool,
    read_eth_as_wei,
    read_int,
    read_int_or_default,
    read_list,
    read_private_key,
    read_str,
    read_url,
    refuse,
)
from core.logging import sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("NTZS_VAR_DIR") or BASE_DIR / "var")
LOCAL_CHAIN_ID = 31337
# The block explorer of each public chain; a chain not listed (the local anvil) has none.
EXPLORER_URLS = {8453: "https://basescan.org", 84532: "https://sepolia.basescan.org"}
MINT_MAX_IN_FLIGHT_CEILING = 64  # production refuses more (finalize)
MINT_MAX_FEE_PER_GAS_PRODUCTION_WEI = 10_000_000_000  # 10 gwei: the default cap (finalize)

# --- Django core -------------------------------------------------------------------------
SECRET_KEY = read_str("SECRET_KEY")
DEBUG = bool(read_bool("DEBUG", False))
ALLOWED_HOSTS = read_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files, no CDN
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",  # recovery codes
    "django_guid",  # the request id of every log line (X-Request-ID)
    "core",
    "accounts",
    "deposits",
    "minting",
    "reconciliation",
    "backstage",
]

MIDDLEWARE = [
    # First, so every line logged while serving a request carries its id.
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.StaffSessionMiddleware",  # staff: idle timeout, second factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("sw", "Kiswahili")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Africa/Dar_es_Salaam"  # shown to people; everything is stored in UTC
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = read_str("DEFAULT_FROM_EMAIL", "nTZS <no-reply@ntzs.local>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes a refusal a 401, not a 403.
        "accounts.authentication.ExpiringTokenAuthentication",  # API_TOKEN_TTL_DAYS
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON nesting bounded: a deep body would otherwise crash the worker (core/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Scoped throttles (views name their scope); the public supply endpoints are anonymous.
    "DEFAULT_THROTTLE_RATES": {"supply": read_str("SUPPLY_API_RATE", "120/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "nTZS back office API",
    "DESCRIPTION": "Deposits of Tanzanian shillings minted as nTZS on Base.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content-Security-Policy (django-csp): no inline script or style anywhere, no framing, forms
# post only to us. Pages load their CSS and JS from our static files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}

# --- Application settings (DESIGN §10) --------------------------------------------------
APP_URL = read_url("APP_URL", "http://127.0.0.1:8000", "NEXT_PUBLIC_APP_URL")
REDIS_URL = read_str("REDIS_URL")

CHAIN_ID = read_int("CHAIN_ID", None, minimum=1)
BASE_SEPOLIA_RPC_URL = read_url("BASE_SEPOLIA_RPC_URL")
BASE_SEPOLIA_RPC_URL_BACKUP = read_url("BASE_SEPOLIA_RPC_URL_BACKUP")
NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA = read_address("NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA")
NTZS_DEPLOY_BLOCK = read_int("NTZS_DEPLOY_BLOCK", None, minimum=0)
NTZS_MINT_WITH_REF = read_bool("NTZS_MINT_WITH_REF", None)  # None: detect (local profile only)
MINTER_PRIVATE_KEY = read_private_key("MINTER_PRIVATE_KEY")
OPERATOR_PRIVATE_KEY = read_private_key("OPERATOR_PRIVATE_KEY")
SAFE_ADDRESS = read_address("SAFE_ADDRESS")
# Who may hold each token role (role name -> addresses; JSON). An indexed grant to anyone
# else raises "unexpected token role holder". Unset: the minter key's address for
# MINTER_ROLE, and the recorded deployer and SAFE_ADDRESS for every role.
TOKEN_ROLE_EXPECTED_HOLDERS = read_address_map("TOKEN_ROLE_EXPECTED_HOLDERS")
# Failed mints waiting at once before "mint_failed accumulating" opens.
MINT_FAILED_ALERT_THRESHOLD = read_int("MINT_FAILED_ALERT_THRESHOLD", 5, minimum=1)
# Addresses whose balances are not circulating (comma-separated): /api/v1/supply/circulating
# answers the on-chain supply minus their balances at the snapshot's block. Unset: none.
TREASURY_ADDRESSES = read_list("TREASURY_ADDRESSES")


# Where pages and the API link a mint transaction (<base>/tx/<hash>). Unset: the explorer of
# CHAIN_ID (finalize); "none", or a chain without one: the hash is shown without a link.
def _explorer_url() -> str | None:
    value = raw("EXPLORER_URL")
    if value is None:
        return None
    return "" if value.lower() == "none" else read_url("EXPLORER_URL")


EXPLORER_URL = _explorer_url()

DAILY_ISSUANCE_CAP_TZS = read_int("DAILY_ISSUANCE_CAP_TZS", 100_000_000, minimum=0)
SAFE_MINT_THRESHOLD_TZS = read_int_or_default("SAFE_MINT_THRESHOLD_TZS", 9_000)
# Which lane new and waiting deposits take: "auto" (the SAFE_MINT_THRESHOLD_TZS rule) or
# "safe_only" (every deposit to the Safe). A super admin overrides it at runtime under four
# eyes (core.selectors.mint_lane_effective); this is the default when no override is set.
MINT_LANE = read_str("MINT_LANE", "auto").strip().lower()
if MINT_LANE not in ("auto", "safe_only"):
    raise ImproperlyConfigured(f"MINT_LANE must be auto or safe_only, not {MINT_LANE!r}.")
MINT_CONFIRMATIONS = read_int("MINT_CONFIRMATIONS", None, minimum=0)
MINT_BATCH_SIZE = read_int("MINT_BATCH_SIZE", 50, minimum=1)
# Unmined mint nonces at once; None: 16 in production (Base's sequencer refuses a sender 16
# ahead of its chain nonce: "txpool is full"), 64 in local and test. See finalize().
MINT_MAX_IN_FLIGHT = read_int("MINT_MAX_IN_FLIGHT", None, minimum=1)
# Items per JSON-RPC batch: Base's public endpoints refuse batches above about 100 items.
RPC_BATCH_MAX = read_int("RPC_BATCH_MAX", 50, minimum=1)
MINT_FEE_BUMP_AFTER_S = read_int("MINT_FEE_BUMP_AFTER_S", 60, minimum=1)
# The most a mint transaction may offer per gas, in wei: new signatures and fee bumps never go
# above it, and reaching it opens the "mint fee cap reached" alert. None: 10 gwei in
# production (Base's base fee is normally far below 0.1 gwei), no practical cap locally and in
# tests (they spike anvil's base fee). See finalize().
MINT_MAX_FEE_PER_GAS_WEI = read_int("MINT_MAX_FEE_PER_GAS_WEI", None, minimum=1)
MINT_CLAIM_LEASE_S = read_int("MINT_CLAIM_LEASE_S", 120, minimum=1)
# eth_getLogs blocks per call (Base's providers refuse or truncate wider ranges).
MINT_LOGS_MAX_RANGE = read_int("MINT_LOGS_MAX_RANGE", 2_000, minimum=1)
# "latest": record at MINT_CONFIRMATIONS, re-check once the safe head passes; "safe": record
# only once the safe head passes the mint's block.
MINT_CONFIRMATION_TAG = read_str("MINT_CONFIRMATION_TAG", "latest").strip().lower()
if MINT_CONFIRMATION_TAG not in ("latest", "safe"):
    raise ImproperlyConfigured(
        f"MINT_CONFIRMATION_TAG must be latest or safe, not {MINT_CONFIRMATION_TAG!r}."
    )
CIRCUIT_OPEN_S = read_int("CIRCUIT_OPEN_S", 30, minimum=0)
MINTER_MIN_GAS_WEI = read_eth_as_wei("MINTER_MIN_GAS_ETH", "0.001")

MIN_DEPOSIT_TZS = read_int("MIN_DEPOSIT_TZS", 1_000, minimum=1)
MAX_DEPOSIT_TZS = read_int("MAX_DEPOSIT_TZS", 1_000_000, minimum=1)
USER_DAILY_LIMIT_TZS = read_int("USER_DAILY_LIMIT_TZS", 2_000_000, minimum=1)
USER_MONTHLY_LIMIT_TZS = read_int("USER_MONTHLY_LIMIT_TZS", 20_000_000, minimum=1)
DEPOSIT_CREATE_MAX_PER_10_MIN = read_int("DEPOSIT_CREATE_MAX_PER_10_MIN", 10, minimum=1)

ZENOPAY_BASE_URL = read_url("ZENOPAY_BASE_URL", "https://zenoapi.com/api")
ZENOPAY_CREATE_PATH = read_str("ZENOPAY_CREATE_PATH", "/payments/mobile_money_tanzania")
ZENOPAY_STATUS_PATH = read_str("ZENOPAY_STATUS_PATH", "/payments/order-status")
ZENOPAY_TIMEOUT = read_int("ZENOPAY_TIMEOUT", 60, minimum=1)
ZENOPAY_API_KEY = read_str("ZENOPAY_API_KEY")
ZENOPAY_SANDBOX = bool(read_bool("ZENOPAY_SANDBOX", False))
ZENOPAY_WEBHOOK_REQUIRE_KEY = bool(read_bool("ZENOPAY_WEBHOOK_REQUIRE_KEY", False))
ZENOPAY_WEBHOOK_ALLOWED_IPS = read_list("ZENOPAY_WEBHOOK_ALLOWED_IPS")
ZENOPAY_WEBHOOK_MAX_PER_MIN = read_int("ZENOPAY_WEBHOOK_MAX_PER_MIN", 600, minimum=1)
# A create with no answer recorded, that ZenoPay's order-status still does not know this long
# after it was requested, is re-sent once (never sooner than twice ZENOPAY_TIMEOUT).
ZENOPAY_CREATE_RESEND_AFTER_S = read_int("ZENOPAY_CREATE_RESEND_AFTER_S", 300, minimum=1)

# Staff identity and outside input (DESIGN §9, §10). Per-profile defaults in finalize().
STAFF_OTP_REQUIRED = read_bool("STAFF_OTP_REQUIRED", None)  # on in production and tests
TRUSTED_PROXY_HOPS = read_int("TRUSTED_PROXY_HOPS", None, minimum=0)  # 1 in production
MAX_PAYING_PHONES_PER_30_DAYS = read_int("MAX_PAYING_PHONES_PER_30_DAYS", 3, minimum=1)
API_TOKEN_TTL_DAYS = read_int("API_TOKEN_TTL_DAYS", 90, minimum=1)
PASSWORD_RESET_TIMEOUT = 3600  # reset links are valid for one hour
STAFF_SESSION_IDLE_S = 30 * 60  # staff sessions end after 30 minutes idle
OTP_TOTP_ISSUER = "nTZS"  # the name staff see in their authenticator app

METRICS_TOKEN = read_str("METRICS_TOKEN")
SENTRY_DSN = read_str("SENTRY_DSN")

# Values that must never reach a log line, an error page, the admin or an API answer
# (core.logging redacts them). Whole values:
SECRET_SETTING_NAMES = (
    "SECRET_KEY",
    "MINTER_PRIVATE_KEY",
    "OPERATOR_PRIVATE_KEY",
    "ZENOPAY_API_KEY",
    "METRICS_TOKEN",
    "SENTRY_DSN",
    "EMAIL_HOST_PASSWORD",  # from EMAIL_URL
)
# URLs whose password, and API keys in path or query, are secret (the host stays readable);
# the database password is taken from DATABASES.
SECRET_URL_SETTING_NAMES = (
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "BASE_SEPOLIA_RPC_URL",
    "BASE_SEPOLIA_RPC_URL_BACKUP",
    "SENTRY_DSN",
)
# Keys only management commands read, straight from the environment.
SECRET_ENV_NAMES = ("DEPLOYER_PRIVATE_KEY", "SAFE_OWNER_PRIVATE_KEY")
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.logging.SecretsExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "core.logging.SecretsExceptionReporter"

# Beat intervals in seconds (DESIGN §2); overridable, never below one second.
BEAT_INTERVALS_S = {
    "deposits.tasks.initiate_payments": read_int("BEAT_INITIATE_PAYMENTS_S", 30, minimum=1),
    "deposits.tasks.poll_zenopay": read_int("BEAT_POLL_ZENOPAY_S", 30, minimum=1),
    "deposits.tasks.expire_stale_deposits": read_int("BEAT_EXPIRE_STALE_S", 3600, minimum=1),
    "minting.tasks.check_minter": read_int("BEAT_CHECK_MINTER_S", 600, minimum=1),
    "minting.tasks.process_mint_jobs": read_int("BEAT_PROCESS_MINT_JOBS_S", 5, minimum=1),
    "minting.tasks.confirm_mints": read_int("BEAT_CONFIRM_MINTS_S", 5, minimum=1),
    "minting.tasks.token_admin_redrive": read_int("BEAT_TOKEN_ADMIN_REDRIVE_S", 60, minimum=1),
    "reconciliation.tasks.index_chain": read_int("BEAT_INDEX_CHAIN_S", 15, minimum=1),
    "reconciliation.tasks.snapshot_supply": read_int("BEAT_SNAPSHOT_SUPPLY_S", 300, minimum=1),
    "reconciliation.tasks.alerts_check": read_int("BEAT_ALERTS_CHECK_S", 60, minimum=1),
}
CELERY_BEAT_SCHEDULE = beat_schedule(BEAT_INTERVALS_S)

# The request id: taken from a valid X-Request-ID (a proxy's), else made, and returned in the
# response; Celery tasks published while serving a request carry it on.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": False,
    "INTEGRATIONS": [DjangoGuidCeleryIntegration(use_django_logging=False, log_parent=False)],
}

LOG_FORMAT = read_str("LOG_FORMAT", "text")
if LOG_FORMAT not in {"text", "json"}:
    raise refuse("LOG_FORMAT", f"must be text or json, got {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "core.logging.RedactSecretsFilter"},
        "log_context": {"()": "core.logging.LogContextFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # One JSON object per line; the message is the same text as in the text format.
        "json": {
            "()": "core.logging.RedactingJsonFormatter",
            "format": (
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s "
                "%(deposit_id)s"
            ),
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            # Redaction first: the context filter reads the message it leaves.
            "filters": ["redact_secrets", "log_context"],
        },
    },
    "root": {"handlers": ["console"], "level": read_str("LOG_LEVEL", "INFO")},
    # urllib3 logs request paths at DEBUG, and RPC URLs carry API keys in their paths.
    # django_guid logs every request id change at INFO.
    "loggers": {"urllib3": {"level": "INFO"}, "django_guid": {"level": "WARNING"}},
}


def celery_settings(*, broker_url: str, var_dir: Path) -> dict:
    """Celery configuration (CELERY_ namespace). The database is the durable queue
    (DESIGN §2): these settings only make redelivery safe and fair, they carry no state."""
    options: dict = {}
    if broker_url == "filesystem://":
        inbox = var_dir / "celery" / "queue"
        processed = var_dir / "celery" / "processed"
        # kombu's default control folder is "control" in the working directory: it would
        # litter the repository root with broadcast exchanges (remote control, ping).
        control = var_dir / "celery" / "control"
        for folder in (inbox, processed, control):
            folder.mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(inbox),
            "data_folder_out": str(inbox),
            "processed_folder": str(processed),
            "control_folder": str(control),
            "store_processed": False,
        }
    redis_broker = broker_url.startswith(("redis://", "rediss://"))
    return {
        "CELERY_BROKER_URL": broker_url,
        # kombu's Redis transport with a repair: a worker that loses Redis reconnects
        # instead of exiting (config.broker).
        **({"CELERY_BROKER_TRANSPORT": "config.broker:Transport"} if redis_broker else {}),
        # Named by class, the transport no longer comes from the URL's scheme, so kombu's
        # "rediss means TLS" no longer applies: say it, with the certificate verified (kombu's
        # own default for a bare rediss:// is not to verify it).
        **(
            {"CELERY_BROKER_USE_SSL": {"ssl_cert_reqs": ssl.CERT_REQUIRED}}
            if broker_url.startswith("rediss://")
            else {}
        ),
        "CELERY_BROKER_TRANSPORT_OPTIONS": options,
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_TASK_SERIALIZER": "json",
        "CELERY_RESULT_SERIALIZER": "json",
        "CELERY_ACCEPT_CONTENT": ["json"],
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_TASK_ACKS_LATE": True,
        "CELERY_TASK_REJECT_ON_WORKER_LOST": True,
        "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
        "CELERY_TASK_DEFAULT_QUEUE": "default",
        # The token-admin tasks wait for an operator transaction's receipt (up to
        # token_admin.RECEIPT_TIMEOUT_S): on default, never holding a mint worker's slot.
        # An exact name wins over the pattern.
        "CELERY_TASK_ROUTES": {
            "minting.tasks.token_admin_execute": {"queue": "default"},
            "minting.tasks.token_admin_redrive": {"queue": "default"},
            "minting.tasks.*": {"queue": "mint"},
        },
        "CELERY_TIMEZONE": "UTC",
        "CELERY_ENABLE_UTC": True,
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
        # The root console handler (LOGGING) writes every line; Celery must not swap the pool
        # processes' sys.stdout/sys.stderr for its logging proxy: a handler created or
        # re-created after that swap writes into the proxy, whose recursion guard drops every
        # record, and the process goes silent (issue 9). print() output stays plain output.
        "CELERY_WORKER_REDIRECT_STDOUTS": False,
        "CELERY_BEAT_SCHEDULE_FILENAME": str(var_dir / "celerybeat-schedule"),
        **_beat_lock(broker_url),
    }


# Seconds a crashed beat's lock outlives it: a second beat takes over within this.
BEAT_LOCK_TTL_S = read_int("BEAT_LOCK_TTL_S", 60, minimum=10)


def _beat_lock(broker_url: str) -> dict:
    """One beat at a time on Redis (celery-redbeat): the running beat holds a Redis lock with a
    TTL and renews it at every tick (at most every 5 s); a second beat waits for the lock and
    runs no schedule, and takes over when a crashed beat's lock expires; a Redis restart is
    waited out (config.scheduler). A Redis lock, not a
    PostgreSQL advisory lock, which transaction pooling would break. The local file-broker
    stack runs one beat by construction and keeps Celery's own scheduler."""
    if not broker_url.startswith(("redis://", "rediss://")):
        return {}
    return {
        "CELERY_BEAT_SCHEDULER": "config.scheduler.OneBeatScheduler",
        "CELERY_REDBEAT_REDIS_URL": broker_url,
        "CELERY_REDBEAT_KEY_PREFIX": "ntzs:beat:",
        "CELERY_REDBEAT_LOCK_KEY": "ntzs:beat::lock",
        "CELERY_REDBEAT_LOCK_TIMEOUT": BEAT_LOCK_TTL_S,
        "CELERY_BEAT_MAX_LOOP_INTERVAL": 5,
    }


def finalize(settings: dict) -> None:
    """Rules that depend on the profile; called last by every profile module."""
    profile = settings["PROFILE"]
    if settings["CHAIN_ID"] is None:
        if profile not in {"local", "test"}:
            raise ImproperlyConfigured(
                f"CHAIN_ID is required in the {profile} profile; set it in the environment."
            )
        settings["CHAIN_ID"] = LOCAL_CHAIN_ID
    if settings["EXPLORER_URL"] is None:
        settings["EXPLORER_URL"] = EXPLORER_URLS.get(settings["CHAIN_ID"], "")
    if settings["STAFF_OTP_REQUIRED"] is None:
        settings["STAFF_OTP_REQUIRED"] = profile != "local"
    elif profile == "production" and not settings["STAFF_OTP_REQUIRED"]:
        raise ImproperlyConfigured(
            "STAFF_OTP_REQUIRED cannot be turned off in the production profile: staff must "
            "pass a second factor there."
        )
    if settings["TRUSTED_PROXY_HOPS"] is None:
        settings["TRUSTED_PROXY_HOPS"] = 1 if profile == "production" else 0
    if settings["MINT_CONFIRMATIONS"] is None:
        settings["MINT_CONFIRMATIONS"] = 1 if settings["CHAIN_ID"] == LOCAL_CHAIN_ID else 3
    if settings["MINT_MAX_IN_FLIGHT"] is None:
        settings["MINT_MAX_IN_FLIGHT"] = 16 if profile == "production" else 64
    elif profile == "production" and settings["MINT_MAX_IN_FLIGHT"] > MINT_MAX_IN_FLIGHT_CEILING:
        raise ImproperlyConfigured(
            f"MINT_MAX_IN_FLIGHT is {settings['MINT_MAX_IN_FLIGHT']}, above "
            f"{MINT_MAX_IN_FLIGHT_CEILING} which the production profile allows: Base's "
            "sequencer refuses a sender that far ahead of its chain nonce; use 16."
        )
    if settings["MINT_MAX_FEE_PER_GAS_WEI"] is None:
        settings["MINT_MAX_FEE_PER_GAS_WEI"] = (
            MINT_MAX_FEE_PER_GAS_PRODUCTION_WEI if profile == "production" else 10**15
        )
    if settings["ZENOPAY_SANDBOX"] and (
        profile not in {"local", "test"} or settings["CHAIN_ID"] != LOCAL_CHAIN_ID
    ):
        raise ImproperlyConfigured(
            "ZENOPAY_SANDBOX=true is allowed only in the local and test profiles on the local "
            f"chain (CHAIN_ID {LOCAL_CHAIN_ID}); this is the {profile} profile with CHAIN_ID "
            f"{settings['CHAIN_ID']}."
        )
    if settings["ZENOPAY_SANDBOX"]:
        settings["INSTALLED_APPS"] = [*settings["INSTALLED_APPS"], "deposits.sandbox"]
        if raw("ZENOPAY_BASE_URL") is None:
            settings["ZENOPAY_BASE_URL"] = f"{settings['APP_URL']}/sandbox/zenopay"
    refusal = public_endpoint_refusal(
        profile=profile, chain_id=settings["CHAIN_ID"], values=settings
    )
    if refusal:
        raise ImproperlyConfigured(refusal)
    operator_key = settings["OPERATOR_PRIVATE_KEY"]
    if operator_key and operator_key.lower() == settings["MINTER_PRIVATE_KEY"].lower():
        # Its transactions would take the minter's nonces, which the mint ledger would then
        # see as "used outside the system" (issue 15).
        raise ImproperlyConfigured(
            "OPERATOR_PRIVATE_KEY is the same key as MINTER_PRIVATE_KEY; the operator key must "
            "be a different key, or unset to use Safe payloads."
        )
    if settings["MIN_DEPOSIT_TZS"] > settings["MAX_DEPOSIT_TZS"]:
        raise ImproperlyConfigured("MIN_DEPOSIT_TZS must not be above MAX_DEPOSIT_TZS.")
    sentry_init(dsn=settings["SENTRY_DSN"], environment=profile)
    if raw("REDIS_URL") is None and profile != "local":
        raise ImproperlyConfigured(
            f"REDIS_URL is required in the {profile} profile; only the local profile may use "
            "the file-system broker and the database cache."
        )
