"""The one admin site: Backstage at /backstage/ (config/urls.py). Django's default
``admin.site`` is not mounted anywhere; the third-party registrations it collects (DRF
tokens, OTP devices) are shown here only through our own admin classes in this package.

The URL namespace stays ``admin`` (``reverse("admin:index")``), so the staff middleware, the
second-factor pages and Django's own admin templates work unchanged."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.contrib import admin
from django.urls import path
from django.utils.translation import gettext_lazy as _

from accounts.forms import StaffAuthenticationForm
from accounts.services.staff import user_is_staff_account
from backstage.dashboard import dashboard_context
from backstage.environment import backstage_environment
from backstage.four_eyes import four_eyes_page_allowed, four_eyes_urls
from backstage.impacted import impacted_page_allowed, impacted_urls
from backstage.incidents import incident_urls, incidents_page_allowed
from backstage.key_rotation import key_rotation_allowed, key_rotation_urls
from backstage.minting_page import (
    ACTIONS,
    minting_action,
    minting_page,
    minting_page_allowed,
)
from backstage.orphans import orphan_urls, orphans_page_allowed
from backstage.reconciliation_pages import reconciliation_page_allowed, reconciliation_urls
from backstage.roles_page import roles_page_allowed, roles_urls
from backstage.safe_lane import safe_lane_allowed, safe_urls
from backstage.token_pages import token_pages_allowed, token_urls
from core.models import Alert
from core.selectors import alerts_open_summary
from deposits.selectors import alerts_visible_to

ALERTS_SHOWN = 3  # the newest open alerts named in the banner; the rest behind the link


def second_factor_passed(request) -> bool:
    if not settings.STAFF_OTP_REQUIRED:
        return True
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified and is_verified())


class BackstageSite(admin.AdminSite):
    site_header = _("nTZS Backstage")
    site_title = _("nTZS Backstage")
    index_title = _("Backstage")
    site_url = "/"
    # The Backstage login counts wrong passwords like the customer login (accounts.throttle).
    login_form = StaffAuthenticationForm

    def has_permission(self, request):
        """Staff accounts open Backstage; what each sees comes from their roles (base.py)."""
        return request.user.is_active and user_is_staff_account(request.user)

    index_template = "backstage/index.html"

    def index(self, request, extra_context=None):
        """The home page is the dashboard (backstage/dashboard.py)."""
        context = {**dashboard_context(request, site=self), **(extra_context or {})}
        return super().index(request, extra_context=context)

    def get_urls(self):
        page = self.admin_view(partial(minting_page, site=self))
        actions = [
            path(
                f"minting/{name}/",
                self.admin_view(partial(minting_action, name=name)),
                name=f"minting_{name}",
            )
            for name in ACTIONS
        ]
        return [
            path("minting/", page, name="minting"),
            *actions,
            *four_eyes_urls(self),
            *orphan_urls(self),
            *safe_urls(self),
            *reconciliation_urls(self),
            *token_urls(self),
            *impacted_urls(self),
            *incident_urls(self),
            *roles_urls(self),
            *key_rotation_urls(self),
            *super().get_urls(),
        ]

    def each_context(self, request):
        context = super().each_context(request)
        context["backstage_environment"] = backstage_environment()
        context["backstage_alerts"] = self._open_alerts(request)
        context["backstage_can_see_minting"] = minting_page_allowed(request.user)
        context["backstage_can_see_four_eyes"] = four_eyes_page_allowed(request.user)
        context["backstage_can_see_orphans"] = orphans_page_allowed(request.user)
        context["backstage_can_see_safe"] = safe_lane_allowed(request.user)
        context["backstage_can_see_reconciliation"] = reconciliation_page_allowed(request.user)
        context["backstage_can_see_token_admin"] = token_pages_allowed(request.user)
        context["backstage_can_see_impacted"] = impacted_page_allowed(request.user)
        context["backstage_can_see_incidents"] = incidents_page_allowed(request.user)
        context["backstage_can_see_token_roles"] = roles_page_allowed(request.user)
        context["backstage_can_see_key_rotation"] = key_rotation_allowed(request.user)
        return context

    def _open_alerts(self, request):
        """The open-alerts banner, for those who may read alerts and have passed the second
        factor (the enrolment and code pages render with this context too)."""
        alert_admin = self._registry.get(Alert)
        if (
            alert_admin is None
            or not self.has_permission(request)
            or not second_factor_passed(request)
            or not alert_admin.has_view_permission(request)
        ):
            return None
        return alerts_open_summary(alerts=alerts_visible_to(user=request.user), newest=ALERTS_SHOWN)


site = BackstageSite(name="admin")
