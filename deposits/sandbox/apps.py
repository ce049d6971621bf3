from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The ZenoPay sandbox: installed only when ZENOPAY_SANDBOX=true (local and test)."""

    name = "deposits.sandbox"
    label = "zenopay_sandbox"
    default_auto_field = "django.db.models.BigAutoField"
