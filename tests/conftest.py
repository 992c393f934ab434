import os

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _services_are_real(django_db_setup, django_db_blocker):
    """In CI (FEEDBACKLOOP_REQUIRE_SERVICES=1) a missing PostgreSQL or Redis fails the run, never skips."""
    if not getattr(settings, "REQUIRE_SERVICES", False):
        return
    from django.core.cache import cache
    from django.db import connection

    with django_db_blocker.unblock():
        assert connection.vendor == "postgresql", f"CI must run on PostgreSQL, not {connection.vendor}"
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert "redis" in settings.CACHES["default"]["BACKEND"].lower(), "CI must use the Redis cache"
    cache.set("feedbackloop-ping", "pong", 10)
    assert cache.get("feedbackloop-ping") == "pong", "Redis did not answer"
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "CI must use the Redis broker"


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


def api_client_for(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def client_for():
    return api_client_for
