from django.apps import AppConfig


class MintingConfig(AppConfig):
    name = "minting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.management.base import command_refusal_register
        from minting.chain import ChainError
        from minting.services import lanes

        lanes.register_dual_control_actions()
        # Every command answers an unreachable or wrong chain in one sentence, no traceback.
        command_refusal_register(ChainError)
