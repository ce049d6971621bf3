import pytest
from django.conf import settings
from django.db import connection


@pytest.mark.django_db
def test_database_is_postgresql():
    assert connection.vendor == "postgresql"
    assert settings.DATABASES["default"]["NAME"].startswith("test_")


def test_cache_is_redis():
    from django.core.cache import cache

    cache.set("k", "v", 5)
    assert cache.get("k") == "v"
    assert "redis" in settings.CACHES["default"]["BACKEND"].lower()
