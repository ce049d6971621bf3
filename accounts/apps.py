from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import services, signals
        from accounts.services.staff import register_staff_dual_control_actions

        services.register_dual_control_actions()
        register_staff_dual_control_actions()
        signals.connect()
