from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import services, signals
        from accounts.services.staff import register_staff_dual_control_actions

        services.register_dual_control_actions()
        register_staff_dual_control_actions()
        signals.connect()
