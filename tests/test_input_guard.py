"""Unstorable text, deep JSON and oversized bodies get a 4xx that names the field or the limit; nothing changes.

NUL characters (PostgreSQL refuses them in text and jsonb) and lone surrogates (no UTF-8 encoding
exists for them) are sent the ways a client can send them: escaped in a JSON body (a value and a
key), raw in a form post, and percent-encoded in a query string or form body (a lone surrogate
arrives as the bytes ED A0 80, which are not UTF-8).
"""

import json
import uuid

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import RequestFactory

from annotation.models import Annotation, Lease, Membership, Project
from config.middleware import InputGuardMiddleware
from tests.factories import ProjectFactory, TaskFactory, member, project_creator
from training.models import TrainingRun

pytestmark = pytest.mark.django_db

NUL = "\u0000"
SURROGATE = "\ud800"
BAD_TEXT = {"nul": NUL, "surrogate": SURROGATE}
REASON = {"nul": "NUL character", "surrogate": "lone surrogate"}


@pytest.fixture
def project():
    return ProjectFactory(name="Original", guidelines="Be kind.")


@pytest.fixture
def admin(project):
    return member(project, role=Membership.Role.ADMIN)


@pytest.fixture
def api(client_for, admin):
    return client_for(admin)


@pytest.fixture
def pages(client, admin):
    client.force_login(admin)
    return client


def post_json(client, url, body, method="post"):
    """json.dumps escapes a lone surrogate as \\ud800 and NUL as \\u0000: what an attacker's client sends."""
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def assert_unchanged(project):
    project.refresh_from_db()
    assert (project.name, project.guidelines) == ("Original", "Be kind.")
    assert Project.objects.count() == 1


# JSON bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BAD_TEXT)
def test_bad_text_in_a_json_value_is_a_400_naming_the_field(api, project, kind):
    response = post_json(api, f"/api/projects/{project.pk}/", {"guidelines": f"a{BAD_TEXT[kind]}b"}, method="patch")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == "guidelines"
    assert REASON[kind] in body["detail"]
    assert_unchanged(project)


@pytest.mark.parametrize("kind", BAD_TEXT)
def test_bad_text_in_a_json_key_is_a_400_naming_the_key(api, admin, project, kind):
    project_creator(admin)  # so that the body, not the permission, decides
    response = post_json(api, "/api/projects/", {"name": "New", f"sl{BAD_TEXT[kind]}ug": "x"})
    assert response.status_code == 400, response.content
    body = response.json()
    escaped = "\\u0000" if kind == "nul" else "\\ud800"
    assert body["field"] == f"sl{escaped}ug"
    assert REASON[kind] in body["detail"] and "key" in body["detail"]
    assert_unchanged(project)


@pytest.mark.parametrize("kind", BAD_TEXT)
def test_the_field_is_named_as_a_path_into_the_body(api, project, kind):
    base = {"project": project.pk, "kind": "sft", "base_model": 1}
    body = {**base, "config": {"lr_scheduler_type": BAD_TEXT[kind]}}
    response = post_json(api, "/api/training-runs/", body)
    assert response.status_code == 400
    assert response.json()["field"] == "config.lr_scheduler_type"
    nested = {**base, "config": {"messages": [{"role": "user", "content": f"x{BAD_TEXT[kind]}"}]}}
    assert post_json(api, "/api/training-runs/", nested).json()["field"] == "config.messages[0].content"
    assert TrainingRun.objects.count() == 0


def test_a_submit_with_bad_text_stores_nothing(client_for, project):
    labeler = member(project)
    task = TaskFactory(project=project)
    api = client_for(labeler)
    assert api.post(f"/api/projects/{project.pk}/next/").status_code == 200
    body = {"client_id": str(uuid.uuid4()), "text": f"my answer{NUL}"}
    response = post_json(api, f"/api/tasks/{task.pk}/annotations/", body)
    assert response.status_code == 400 and response.json()["field"] == "text"
    skip = post_json(api, f"/api/tasks/{task.pk}/skip/", {"client_id": str(uuid.uuid4()), "reason": SURROGATE})
    assert skip.status_code == 400 and skip.json()["field"] == "reason"
    assert not Annotation.objects.exists()


def test_json_nested_10000_deep_is_a_400(api, project):
    deep = "[" * 10_000 + "]" * 10_000
    response = api.patch(f"/api/projects/{project.pk}/", data=deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested more than 64 levels" in response.json()["detail"]
    deep_object = '{"guidelines": ' + '{"a": ' * 10_000 + "1" + "}" * 10_001
    response = api.patch(f"/api/projects/{project.pk}/", data=deep_object, content_type="application/json")
    assert response.status_code == 400
    assert_unchanged(project)


def test_json_just_past_the_depth_limit_is_a_400_naming_where(api, project):
    body = {"guidelines": "ok"}
    inner = body
    for _ in range(70):
        inner["x"] = {}
        inner = inner["x"]
    response = post_json(api, f"/api/projects/{project.pk}/", body, method="patch")
    assert response.status_code == 400
    assert response.json()["field"].startswith("x.x.x")
    assert_unchanged(project)


def test_a_json_body_that_is_not_utf8_is_a_400(api, project):
    body = b'{"name": "\xed\xa0\x80"}'
    response = api.patch(f"/api/projects/{project.pk}/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert_unchanged(project)


# Forms and query strings ---------------------------------------------------------------------------


def test_a_nul_in_a_page_form_is_a_400_page_naming_the_field(pages, project):
    response = pages.post("/projects/new/", {"name": f"Evil{NUL}", "overlap": 1, "lease_seconds": 600})
    assert response.status_code == 400
    assert "text/html" in response["Content-Type"]
    assert "name contains a NUL character" in response.content.decode()
    assert_unchanged(project)


@pytest.mark.parametrize(("encoded", "reason"), [("%00", "NUL character"), ("%ED%A0%80", "not valid utf-8")])
def test_bad_text_in_a_urlencoded_page_form_is_a_400(pages, project, encoded, reason):
    body = f"name=Fine&guidelines=x{encoded}y&overlap=1&lease_seconds=600"
    url, form = f"/projects/{project.pk}/settings/", "application/x-www-form-urlencoded"
    response = pages.post(url, data=body, content_type=form)
    assert response.status_code == 400
    page = response.content.decode()
    assert "guidelines" in page and reason in page
    assert_unchanged(project)


@pytest.mark.parametrize(("encoded", "reason"), [("%00", "NUL character"), ("%ED%A0%80", "not valid utf-8")])
def test_bad_text_in_an_api_form_is_a_400_naming_the_field(client, admin, project, encoded, reason):
    body = f"username={admin.username}{encoded}&password=pass-1234"
    response = client.post("/api/auth/token/", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["field"] == "username" and reason in response.json()["detail"]


def test_a_nul_in_a_patched_multipart_form_is_a_400(api, project):
    """PUT and PATCH bodies are not parsed by Django, so the API's form parsers check them."""
    response = api.patch(f"/api/projects/{project.pk}/", {"guidelines": f"x{NUL}"}, format="multipart")
    assert response.status_code == 400 and response.json()["field"] == "guidelines"
    assert_unchanged(project)


@pytest.mark.parametrize(("encoded", "reason"), [("%00", "NUL character"), ("%ED%A0%80", "not valid utf-8")])
def test_bad_text_in_a_query_string_is_a_400_naming_the_parameter(api, pages, project, encoded, reason):
    TaskFactory(project=project)
    response = api.post(f"/api/projects/{project.pk}/next/?kind=x{encoded}")
    assert response.status_code == 400
    assert response.json() == {"detail": response.json()["detail"], "field": "kind"}
    assert reason in response.json()["detail"]
    assert not Lease.objects.exists()
    page = pages.get(f"/training/runs/?status={encoded}")
    assert page.status_code == 400 and "status" in page.content.decode() and reason in page.content.decode()
    name = pages.get(f"/training/runs/?st{encoded}atus=1")
    assert name.status_code == 400


def test_a_nul_in_a_header_is_a_400(client, admin):
    """A token with a NUL once reached the token lookup, and PostgreSQL refused the query (a 500)."""
    response = client.get("/api/projects/", HTTP_AUTHORIZATION=f"Token abc{NUL}def")
    assert response.status_code == 400
    assert response.json()["field"] == "Authorization"


def test_a_multipart_body_without_a_boundary_is_a_400(pages, project):
    response = pages.post("/projects/new/", data=b"name=x", content_type="multipart/form-data")
    assert response.status_code == 400
    assert_unchanged(project)


def test_ordinary_text_passes(api, pages, project):
    """Accents, emoji (a surrogate pair in UTF-16, one code point here) and U+FFFD are text like any other."""
    text = "Café 🙂 \ufffd ok"
    assert post_json(api, f"/api/projects/{project.pk}/", {"guidelines": text}, method="patch").status_code == 200
    project.refresh_from_db()
    assert project.guidelines == text
    assert pages.get("/training/runs/?status=caf%C3%A9&project=").status_code == 200


# Body size ---------------------------------------------------------------------------------------------


def test_a_json_body_over_the_limit_is_a_413_naming_the_limit(api, project, settings):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({"guidelines": "x" * limit})
    response = api.patch(f"/api/projects/{project.pk}/", data=body, content_type="application/json")
    assert response.status_code == 413
    data = response.json()
    assert data["limit_bytes"] == limit
    assert "10 MiB" in data["detail"] and str(limit) in data["detail"]
    assert_unchanged(project)


def test_a_form_over_the_limit_is_a_413_page(pages, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = pages.post(f"/projects/{project.pk}/settings/", {"name": "x", "guidelines": "y" * 4096})
    assert response.status_code == 413
    assert "text/html" in response["Content-Type"] and "2 KiB" in response.content.decode()
    assert_unchanged(project)


def test_a_form_that_django_finds_too_big_while_reading_is_a_413(api, admin, project, settings):
    """A multipart body to the import route may pass the body limit (its file has its own); Django
    then counts the form's other fields as it reads them and raises RequestDataTooBig: a 413, not a
    bare "Bad Request" page. (The same exception comes from a body sent without a Content-Length.)"""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api.post(f"/api/projects/{project.pk}/import/", {"mode": "x" * 4096}, format="multipart")
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == 1024
    assert response.json()["detail"].startswith("The request body is larger than the limit of 1 KiB")


def test_request_data_too_big_raised_by_a_view_becomes_a_413(settings):
    middleware = InputGuardMiddleware(lambda request: None)
    api = middleware.process_exception(RequestFactory().post("/api/projects/"), RequestDataTooBig())
    assert api.status_code == 413
    assert json.loads(api.content)["limit_bytes"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    request = RequestFactory().post("/projects/new/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    page = middleware.process_exception(request, RequestDataTooBig())
    assert page.status_code == 413 and b"10 MiB" in page.content
