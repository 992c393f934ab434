"""Scoping: a labeler of project A learns nothing of project B, and only admins manage a project."""

import uuid

import pytest

from annotation.models import Annotation, Lease
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member, project_creator

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_projects():
    mine, theirs = ProjectFactory(), ProjectFactory()
    labeler = member(mine)
    task = TaskFactory(project=theirs)
    comparison = comparison_task(project=theirs)
    return mine, theirs, labeler, task, comparison


def test_every_endpoint_hides_another_projects_data(client_for, two_projects):
    mine, theirs, labeler, task, comparison = two_projects
    client = client_for(labeler)
    body = {"client_id": str(uuid.uuid4()), "text": "x"}
    attempts = {
        "detail": client.get(f"/api/projects/{theirs.pk}/"),
        "change": client.patch(f"/api/projects/{theirs.pk}/", {"name": "mine now"}, format="json"),
        "claim": client.post(f"/api/projects/{theirs.pk}/next/"),
        "task": client.get(f"/api/tasks/{task.pk}/"),
        "submit": client.post(f"/api/tasks/{task.pk}/annotations/", body, format="json"),
        "skip": client.post(f"/api/tasks/{comparison.pk}/skip/", {"reason": "x"}, format="json"),
        "heartbeat": client.post(f"/api/tasks/{task.pk}/heartbeat/"),
        "import": client.post(f"/api/projects/{theirs.pk}/import/", {}, format="multipart"),
        "members": client.post(f"/api/projects/{theirs.pk}/members/", {"username": "x", "role": "admin"}),
        "export sft": client.get(f"/api/projects/{theirs.pk}/export/?format=sft"),
        "export preference": client.get(f"/api/projects/{theirs.pk}/export/?format=preference"),
        "export raw": client.get(f"/api/projects/{theirs.pk}/export/?format=raw"),
    }
    assert {name: r.status_code for name, r in attempts.items()} == {name: 404 for name in attempts}
    for response in attempts.values():
        assert theirs.name not in response.content.decode()
    listed = client.get("/api/projects/").json()
    assert [p["id"] for p in listed] == [mine.pk]
    assert not Lease.objects.exists() and not Annotation.objects.exists()


def test_anonymous_requests_are_refused(client):
    project = ProjectFactory()
    assert client.get("/api/projects/").status_code in (401, 403)
    assert client.post(f"/api/projects/{project.pk}/next/").status_code in (401, 403)


def test_only_admins_import_export_or_change_a_project(client_for):
    project = ProjectFactory()
    labeler = member(project)
    client = client_for(labeler)
    assert client.get(f"/api/projects/{project.pk}/").status_code == 200
    assert client.patch(f"/api/projects/{project.pk}/", {"overlap": 3}, format="json").status_code == 403
    assert client.post(f"/api/projects/{project.pk}/import/", {}, format="multipart").status_code == 403
    assert client.get(f"/api/projects/{project.pk}/export/?format=raw").status_code == 403
    role_grab = client.post(f"/api/projects/{project.pk}/members/", {"username": labeler.username, "role": "admin"})
    assert role_grab.status_code == 403
    project.refresh_from_db()
    assert project.overlap == 1


def test_token_auth_and_project_creation(client, client_for):
    user = member(ProjectFactory(), username="alice")
    token = client.post("/api/auth/token/", {"username": "alice", "password": "pass-1234"})
    assert token.status_code == 200 and token.json()["token"]
    wrong = client.post("/api/auth/token/", {"username": "alice", "password": "nope"})
    assert wrong.status_code == 400
    api = client_for(project_creator(user))
    created = api.post("/api/projects/", {"name": "Helpfulness", "overlap": 2}, format="json")
    assert created.status_code == 201 and created.json()["role"] == "admin"
    bad = api.post("/api/projects/", {"name": "X", "overlap": 0}, format="json")
    assert bad.status_code == 400 and "overlap" in bad.json()


def test_token_lookups_are_cached(client_for, django_assert_max_num_queries):
    project = ProjectFactory()
    labeler = member(project)
    client = client_for(labeler)
    client.get(f"/api/projects/{project.pk}/")
    with django_assert_max_num_queries(1):
        # Only the task lookup: the token and its user come from the cache.
        assert client.post("/api/tasks/999999/heartbeat/").status_code == 404


def test_a_deleted_token_or_deactivated_user_stops_working_at_once(client_for):
    from rest_framework.authtoken.models import Token

    project = ProjectFactory()
    labeler = member(project)
    client = client_for(labeler)
    assert client.get("/api/projects/").status_code == 200  # now cached
    labeler.is_active = False
    labeler.save()
    assert client.get("/api/projects/").status_code == 401
    labeler.is_active = True
    labeler.save()
    assert client.get("/api/projects/").status_code == 200
    Token.objects.filter(user=labeler).delete()
    assert client.get("/api/projects/").status_code == 401
