from django.conf import settings
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAdminUser

from backstage import otp_views
from backstage import views as backstage_views
from backstage.admin import site as backstage_site
from core import views as core_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("readyz", backstage_views.readyz, name="readyz"),
    path("metrics", backstage_views.metrics, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),
    # The staff second factor, before the admin's catch-all (accounts.middleware sends every
    # staff session that has not passed it here).
    path("backstage/otp/", otp_views.staff_otp_verify, name="staff_otp_verify"),
    path("backstage/otp/enrol/", otp_views.staff_otp_enrol, name="staff_otp_enrol"),
    # Backstage, the one admin site; Django's default admin.site is mounted nowhere.
    path("backstage/", backstage_site.urls),
    path("api/", include("deposits.urls_api")),
    path("api/v1/", include("deposits.urls_api_v1")),
    path("api/v1/", include("reconciliation.urls")),  # public supply (anonymous, throttled)
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAdminUser]),
        name="api-schema",
    ),
    # The split view serves its script as a separate file (no inline script), and our
    # template drops its inline style: the page runs under the same CSP as every other.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema",
            permission_classes=[IsAdminUser],
            template_name="api/swagger_ui.html",
        ),
        name="api-docs",
    ),
    path("deposits/", include("deposits.urls")),
    path("", include("accounts.urls")),
]

if settings.ZENOPAY_SANDBOX:
    urlpatterns.insert(0, path("sandbox/zenopay/", include("deposits.sandbox.urls")))
