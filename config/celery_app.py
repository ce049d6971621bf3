"""The Celery application: `celery -A config worker -Q default,mint` and `celery -A config beat`.

Configuration lives in Django settings (CELERY_ namespace, see config.settings.base); the
schedule in config.beat. Importing this module must not touch Django settings.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("ntzs")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
