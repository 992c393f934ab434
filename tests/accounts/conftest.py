import pytest
from rest_framework.test import APIClient


@pytest.fixture
def limit(settings):
    """A small failure limit keeps the lockout tests short; the cool-off stays the default 15 minutes."""
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
