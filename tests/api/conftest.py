"""API fuzzing set-up: the OpenAPI document as drf-spectacular generates it (the served one
is staff-only), and the Django app called in-process as a WSGI application."""

from __future__ import annotations

import json

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections


@pytest.fixture(scope="session")
def openapi_document() -> dict:
    """The schema ``manage.py spectacular`` writes, as JSON-compatible data (lazy texts
    rendered), built in-process without a request."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema))


@pytest.fixture
def wsgi_app(db):
    """Django's WSGI handler inside the test's transaction. Like Django's own test client, it
    keeps the request signals from closing the connection (which would end the transaction
    that holds the test's rows)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
