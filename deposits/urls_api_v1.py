"""REST API v1, mounted at /api/v1/. A deposit id that is not a UUID is a JSON 404 like a
missing one (hence ``str`` and not ``uuid`` converters)."""

from django.urls import path

from deposits.apis import DepositCheckApi, DepositDetailApi, DepositsApi

urlpatterns = [
    path("deposits", DepositsApi.as_view(), name="api-deposits"),
    path("deposits/<str:deposit_id>", DepositDetailApi.as_view(), name="api-deposit-detail"),
    path("deposits/<str:deposit_id>/check", DepositCheckApi.as_view(), name="api-deposit-check"),
]
