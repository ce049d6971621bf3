"""Production profile: everything from the environment; refuses to start without it."""

from core.env import require

PROFILE = "production"
require(
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "CHAIN_ID",
        "BASE_SEPOLIA_RPC_URL",
        "MINTER_PRIVATE_KEY",
        "ZENOPAY_API_KEY",
        "APP_URL",
        "ALLOWED_HOSTS",
    ],
    PROFILE,
)

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import (  # noqa: E402
    ALLOWED_HOSTS,
    SECRET_KEY,
    VAR_DIR,
    celery_settings,
    finalize,
)
from core.env import raw, read_database, read_int, read_str, refuse  # noqa: E402

# The messages never echo the key: it is a secret.
if len(SECRET_KEY) < 50:
    raise refuse(
        "SECRET_KEY",
        "must be at least 50 characters in the production profile; "
        "generate one with `python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))'`.",
    )
if len(set(SECRET_KEY)) < 5:
    raise refuse(
        "SECRET_KEY",
        "must contain at least 5 different characters in the production "
        "profile; generate a random one.",
    )
if any("*" in host for host in ALLOWED_HOSTS):
    raise refuse(
        "ALLOWED_HOSTS",
        "must not contain '*' in the production profile; list the host names this site answers to.",
    )

DEBUG = False
DATABASES = {"default": read_database("DATABASE_URL", None)}
DATABASES["default"]["CONN_MAX_AGE"] = read_int("CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind PgBouncer or Neon in transaction mode, each transaction may run on another server
# connection: a server-side cursor (iterator()) opened in one would be gone in the next.
DATABASE_POOLER = read_str("DATABASE_POOLER", "session")
if DATABASE_POOLER not in {"session", "transaction"}:
    raise refuse(
        "DATABASE_POOLER",
        f"must be session (a direct connection or session pooling) or transaction, "
        f"got {DATABASE_POOLER!r}.",
    )
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASE_POOLER == "transaction"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": raw("REDIS_URL"),
    }
}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = [raw("APP_URL", "NEXT_PUBLIC_APP_URL")]
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

vars().update(celery_settings(broker_url=raw("REDIS_URL"), var_dir=VAR_DIR))
finalize(vars())
