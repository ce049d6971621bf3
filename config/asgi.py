import os

from django.core.asgi import get_asgi_application

# Production unless exported (the config package's Celery app sets the same default first).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_asgi_application()
