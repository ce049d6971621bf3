"""Zero-configuration local profile: SQLite, the file-system broker, anvil, ZenoPay sandbox.

The local stack (``make dev``) writes the chain addresses and dev keys to var/local.env;
values already in the environment win over that file.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

_VAR = Path(os.environ.get("NTZS_VAR_DIR") or Path(__file__).resolve().parents[2] / "var")
environ.Env.read_env(_VAR / "local.env", overwrite=False)
for _name, _default in {
    "SECRET_KEY": "local-only-insecure-secret-key-change-me-0123456789abcdef",
    "DEBUG": "true",
    "ZENOPAY_SANDBOX": "true",
    "BASE_SEPOLIA_RPC_URL": "http://127.0.0.1:8545",
}.items():
    os.environ.setdefault(_name, _default)

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import (  # noqa: E402
    CHAIN_ID,
    LOCAL_CHAIN_ID,
    VAR_DIR,
    celery_settings,
    finalize,
)
from core.env import raw, read_database  # noqa: E402

PROFILE = "local"

# The local profile (DEBUG, demo tools, sandbox, insecure defaults) belongs on the local chain
# only, so a host with a real chain configured can never run it by accident (DESIGN §2).
if CHAIN_ID is not None and CHAIN_ID != LOCAL_CHAIN_ID:
    raise ImproperlyConfigured(
        f"The local profile runs only on the local chain (CHAIN_ID {LOCAL_CHAIN_ID}), not on "
        f"CHAIN_ID {CHAIN_ID}; start with DJANGO_SETTINGS_MODULE=config.settings.production."
    )

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": read_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and beat read while one writes; IMMEDIATE takes the write lock
    # at BEGIN so two writers queue on the busy timeout instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

if raw("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": raw("REDIS_URL"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "ntzs_cache",
        }
    }

vars().update(celery_settings(broker_url=raw("REDIS_URL") or "filesystem://", var_dir=VAR_DIR))
finalize(vars())
