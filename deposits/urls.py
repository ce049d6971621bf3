from django.urls import path  # noqa: F401 - the pages are added by the customer-pages work

app_name = "deposits"
urlpatterns: list = []
