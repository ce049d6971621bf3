"""Mounted at /sandbox/zenopay/ when ZENOPAY_SANDBOX is on: ZenoPay's own paths under it
(payments/mobile_money_tanzania, payments/order-status), plus the phone page."""

from django.urls import path

from deposits.sandbox import views

app_name = "zenopay_sandbox"
urlpatterns = [
    path("payments/mobile_money_tanzania", views.create, name="create"),
    path("payments/order-status", views.order_status, name="order_status"),
    path("phone/", views.phone, name="phone"),
    path("phone/orders/", views.phone_order, name="phone_order"),
    path("phone/knobs/", views.phone_knobs, name="phone_knobs"),
]
