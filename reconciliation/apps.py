from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reconciliation.services import attach, entries

        entries.register_dual_control_actions()
        attach.register_dual_control_actions()
