from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DepositsConfig(AppConfig):
    name = "deposits"
    verbose_name = _("Deposits")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deposits.services import operator

        operator.register_dual_control_actions()
