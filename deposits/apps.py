from django.apps import AppConfig


class DepositsConfig(AppConfig):
    name = "deposits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deposits.services import operator

        operator.register_dual_control_actions()
