from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from core import views as core_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("backstage/", admin.site.urls),
    path("api/", include("deposits.urls_api")),
    path("", include("accounts.urls")),
]

if settings.ZENOPAY_SANDBOX:
    urlpatterns.insert(0, path("sandbox/zenopay/", include("deposits.sandbox.urls")))
