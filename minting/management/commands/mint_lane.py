from core.management.base import OperatorCommand
from core.selectors import mint_lane_effective
from minting.services.lanes import MINT_LANE_CHOICES, mint_lane_request


class Command(OperatorCommand):
    help = (
        "Super admin: request a runtime switch of MINT_LANE (auto, safe_only, or environment "
        "to clear the override); another super admin approves it in Backstage (Waiting for "
        "me). Prints the effective lane and where it comes from."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--set", dest="lane", required=True, choices=MINT_LANE_CHOICES)
        parser.add_argument("--reason", required=True)

    def run(self, actor, *, lane, reason, **options) -> str:
        request = mint_lane_request(lane=lane, actor=actor, reason=reason)
        state = mint_lane_effective()
        source = "a runtime override" if state.overridden else "the environment"
        return (
            f"MINT_LANE is {state.lane} ({source}). The switch to {lane} is requested "
            f"(request {request.pk}); it applies once another super admin approves it."
        )
