from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAdminUser

from backstage import views as backstage_views
from core import views as core_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", backstage_views.readyz, name="readyz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("backstage/", admin.site.urls),
    path("api/", include("deposits.urls_api")),
    path("api/v1/", include("deposits.urls_api_v1")),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[IsAdminUser]),
         name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema",
                                                     permission_classes=[IsAdminUser]),
         name="api-docs"),
    path("deposits/", include("deposits.urls")),
    path("", include("accounts.urls")),
]

if settings.ZENOPAY_SANDBOX:
    urlpatterns.insert(0, path("sandbox/zenopay/", include("deposits.sandbox.urls")))
