"""Customer deposit pages, mounted at /deposits/. Deposit URLs carry the UUID only."""

from django.urls import path

from deposits import views

app_name = "deposits"

urlpatterns = [
    path("", views.deposit_history, name="history"),
    path("new/", views.deposit_new, name="new"),
    path("<uuid:deposit_id>/", views.deposit_detail, name="detail"),
    path("<uuid:deposit_id>/status/", views.deposit_status_fragment, name="status_fragment"),
    path("<uuid:deposit_id>/check/", views.deposit_check_again, name="check_again"),
    path("<uuid:deposit_id>/receipt/", views.deposit_receipt, name="receipt"),
]
