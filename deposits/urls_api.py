from django.urls import path

from deposits.api import ZenoPayWebhookApi

urlpatterns = [
    path("webhooks/zenopay", ZenoPayWebhookApi.as_view(), name="zenopay-webhook"),
]
