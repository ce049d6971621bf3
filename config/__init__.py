# Importing the Celery app here makes `celery -A config` work; it also sets the default
# settings profile (production) for every entry point but manage.py (see config.celery_app).
from config.celery_app import app as celery_app

__all__ = ("celery_app",)
