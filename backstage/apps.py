from django.apps import AppConfig


class BackstageConfig(AppConfig):
    name = "backstage"
    default_auto_field = "django.db.models.BigAutoField"
