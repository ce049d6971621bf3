"""The Celery application: `celery -A config worker -Q default,mint` and `celery -A config beat`.

Configuration lives in Django settings (CELERY_ namespace, see config.settings.base); the
schedule in config.beat. Importing this module must not touch Django settings.

The default profile is **production** (DESIGN §2): this module is imported by the ``config``
package, so its default is also the one ``gunicorn config.wsgi`` and ``celery -A config`` get
when DJANGO_SETTINGS_MODULE is not exported. A default of local here would win over wsgi.py's
and start a production host with DEBUG and the local-only tools. ``manage.py`` sets local
before it imports anything from ``config``; ``make dev`` exports the local profile itself.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("ntzs")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _redbeat_settings_unprefixed(sender, **_kwargs) -> None:
    """celery-redbeat looks for its settings by their bare names and, not finding
    ``redbeat_redis_url`` there (ours carry the CELERY_ prefix), warns at every beat start
    that it falls back to the broker URL. Repeat the prefixed values under the bare names."""
    for name in ("redbeat_redis_url", "redbeat_key_prefix", "redbeat_lock_key"):
        value = sender.conf.get(f"CELERY_{name.upper()}")
        if value:
            sender.conf[name] = value
