from django.apps import AppConfig


class MintingConfig(AppConfig):
    name = "minting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from core.endpoints import RPC_URL_SETTINGS, public_endpoint_warning_log
        from core.management.base import command_refusal_register
        from deposits.services.operator import hold_release_check_register
        from minting.chain import ChainError
        from minting.services import lanes, token_admin

        lanes.register_dual_control_actions()
        token_admin.register_dual_control_actions()
        hold_release_check_register(token_admin.blacklist_release_check)
        # Every command answers an unreachable or wrong chain in one sentence, no traceback.
        command_refusal_register(ChainError)
        # Once per process: Sepolia on Base's public endpoint works, slowly (core.endpoints).
        public_endpoint_warning_log(
            chain_id=settings.CHAIN_ID,
            values={name: getattr(settings, name, "") for name in RPC_URL_SETTINGS},
        )
