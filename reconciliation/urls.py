"""Public supply endpoints, mounted at /api/v1/ next to the deposits API."""

from django.urls import path

from reconciliation.api import SupplyApi, SupplyCirculatingApi, SupplyTotalApi

urlpatterns = [
    path("supply", SupplyApi.as_view(), name="api-supply"),
    path("supply/total", SupplyTotalApi.as_view(), name="api-supply-total"),
    path("supply/circulating", SupplyCirculatingApi.as_view(), name="api-supply-circulating"),
]
