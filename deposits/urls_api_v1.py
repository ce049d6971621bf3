from django.urls import path  # noqa: F401 - the API views are added by the API work

urlpatterns: list = []
