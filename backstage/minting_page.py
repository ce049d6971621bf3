"""The Backstage minting page (read-only for now; its actions — stop / start minting, the cap
override — come with the Backstage screens): what ``manage.py mint_status`` prints, from the
database, the shared breaker and the last stored minter check. A page view never calls the
chain: it must answer while the RPC node is slow or down, and a flood of page views must not
reach the provider."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, user_has_role
from minting.breaker import rpc_breaker
from minting.models import MinterCheckRecord
from minting.selectors import mint_cost_of_day
from minting.services.operator import mint_status


def minting_page_allowed(user) -> bool:
    """Compliance and super admins (DESIGN §9); bank admins see their bank's deposits only."""
    return user.is_authenticated and user_has_role(user, PLATFORM_COMPLIANCE, SUPER_ADMIN)


def minting_page(request, *, site):
    if not minting_page_allowed(request.user):
        raise PermissionDenied
    context = {
        **site.each_context(request),
        "title": _("Minting"),
        "status": mint_status(),
        "circuit": rpc_breaker().state(),
        "check": MinterCheckRecord.objects.filter(name="minter").first(),
        "cost": mint_cost_of_day(),
    }
    return TemplateResponse(request, "backstage/minting.html", context)
