"""The token roles report in Backstage (issue 15 point 4; DESIGN §9: super admins only): who
holds each role of the token according to the indexed role events, each holder confirmed
with ``hasRole`` on chain when the page is read, next to the expected holders, with
unexpected holders, expected holders without their role and events that disagree with the
chain flagged in words. A read: the page calls ``reconciliation.services.roles`` and
changes nothing (the alert on an unexpected holder is raised by the indexer's run)."""

from __future__ import annotations

from functools import partial

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _

from core.roles import SUPER_ADMIN, user_has_role
from reconciliation.services.roles import token_roles_report


def roles_page_allowed(user) -> bool:
    """The token roles report is super admins' (DESIGN §9)."""
    return user.is_authenticated and user_has_role(user, SUPER_ADMIN)


def roles_page(request, *, site):
    if not roles_page_allowed(request.user):
        raise PermissionDenied
    report = token_roles_report()
    sections = [
        {"role": role, "rows": [h for h in report.holders if h.role == role]}
        for role in report.roles
    ]
    context = {
        **site.each_context(request),
        "title": _("Token roles"),
        "report": report,
        "sections": sections,
    }
    return TemplateResponse(request, "backstage/token_roles.html", context)


def roles_urls(site) -> list:
    """The roles page's URL, added by ``BackstageSite.get_urls`` (namespace ``admin``)."""
    return [
        path(
            "token-roles/",
            site.admin_view(partial(roles_page, site=site)),
            name="token_roles",
        ),
    ]
