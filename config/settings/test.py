"""Test profile: real PostgreSQL and Redis (and anvil, from the test fixtures).

When DATABASE_URL or REDIS_URL is not given, loading this profile starts throwaway servers
(tests/support/services.py) on free ports and exports their URLs; they are removed when the
test process exits. Subprocesses started by tests inherit the URLs and start nothing.
"""

import os

if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
    from tests.support.services import services_start

    services_start()

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789abcdef0123456789abcdef")
os.environ.setdefault("ZENOPAY_SANDBOX", "true")
os.environ.setdefault("APP_URL", "http://testserver")

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR, celery_settings, finalize
from core.env import raw, read_database

PROFILE = "test"

DATABASES = {"default": read_database("DATABASE_URL", None)}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": raw("REDIS_URL"),
    }
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

vars().update(celery_settings(broker_url=raw("REDIS_URL") or "", var_dir=VAR_DIR))
finalize(vars())

CRASH_POINTS: set[str] = set()  # armed by the crash-injection tests (core.crashpoints)
