from django.apps import AppConfig


class MintingConfig(AppConfig):
    name = "minting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from minting.services import lanes

        lanes.register_dual_control_actions()
