"""The API describes itself at /api/schema/ and the browsable page works offline."""

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_schema_lists_the_stable_paths(client):
    client.force_login(UserFactory())
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/projects/", "/api/projects/{project_id}/", "/api/projects/{project_id}/import/",
        "/api/projects/{project_id}/next/", "/api/tasks/{task_id}/annotations/", "/api/tasks/{task_id}/skip/",
        "/api/projects/{project_id}/export/", "/api/auth/token/",
    ):
        assert path in paths, path


def test_docs_page_loads_swagger_from_our_own_static_files(client):
    client.force_login(UserFactory())
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower() and "https://" not in page


def test_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
