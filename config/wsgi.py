import os

from django.core.wsgi import get_wsgi_application

# Production unless exported (the config package's Celery app sets the same default first).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()
