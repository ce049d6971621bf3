from django.apps import AppConfig


class MintingConfig(AppConfig):
    name = "minting"
    default_auto_field = "django.db.models.BigAutoField"
