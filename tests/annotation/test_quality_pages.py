"""The quality report over HTTP: who may read it and queue it, and that reading never computes it."""

import json

import pytest
from django.core.cache import cache
from django.urls import reverse

from annotation.models import Membership
from annotation.reliability import store
from annotation.reliability.compute import quality_compute
from tests.annotation.quality_data import table_project
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db

TABLE = {
    "ann": [2, 2, -1, 3, -2, 0],
    "ben": [2, 1, -2, 3, -2, 0],
    "cid": [1, 2, -1, 2, -1, 1],
}


@pytest.fixture
def queued(monkeypatch):
    """Record the quality tasks sent, instead of sending them to a broker."""
    sent = []
    monkeypatch.setattr("annotation.tasks.quality_compute_project.delay", lambda project_id: sent.append(project_id))
    return sent


@pytest.fixture
def labeled():
    project, _, users = table_project(TABLE)
    return project, users


def people(project):
    return {
        role: member(project, role, username=f"{role}-{project.pk}")
        for role in (Membership.Role.ADMIN, Membership.Role.ENGINEER, Membership.Role.LABELER)
    }


@pytest.mark.parametrize(
    ("role", "read", "queue"),
    [("admin", 200, 202), ("engineer", 200, 202), ("labeler", 403, 403), (None, 404, 404)],
)
def test_access_by_role(role, read, queue, queued, django_capture_on_commit_callbacks):
    project = ProjectFactory()
    user = member(project, role, username="someone") if role else member(ProjectFactory(), username="outsider")
    client = api_client_for(user)
    assert client.get(f"/api/projects/{project.pk}/quality/").status_code == read
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/projects/{project.pk}/quality/recompute/").status_code == queue
    assert queued == ([project.pk] if queue == 202 else [])


def test_anonymous_gets_no_report(client):
    project = ProjectFactory()
    assert client.get(f"/api/projects/{project.pk}/quality/").status_code in (401, 403)
    page = client.post(reverse("project-quality-recompute", args=[project.pk]))
    assert page.status_code == 302 and "/login/" in page["Location"]


def test_the_api_reads_the_cached_report_without_touching_annotations(labeled, django_assert_max_num_queries):
    project, _ = labeled
    engineer = people(project)[Membership.Role.ENGINEER]
    client = api_client_for(engineer)
    missing = client.get(f"/api/projects/{project.pk}/quality/").json()
    assert missing == {"status": "missing", "queued_at": None, "report": None}
    store.quality_report_set(report=quality_compute(project_id=project.pk))
    client.get(f"/api/projects/{project.pk}/quality/")  # warm the token cache
    with django_assert_max_num_queries(1) as captured:
        body = client.get(f"/api/projects/{project.pk}/quality/").json()
    assert not any("annotation_annotation" in q["sql"] for q in captured.captured_queries)
    assert body["status"] == "ready"
    assert [row["username"] for row in body["report"]["labelers"]][:3] == ["ann", "ben", "cid"]
    assert {row["kind"] for row in body["report"]["alpha"]} >= {"choice", "preference", "all_bad"}


def test_a_second_request_while_queued_queues_nothing(labeled, queued, django_capture_on_commit_callbacks):
    project, _ = labeled
    client = api_client_for(people(project)[Membership.Role.ADMIN])
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"/api/projects/{project.pk}/quality/recompute/").json()
        second = client.post(f"/api/projects/{project.pk}/quality/recompute/").json()
    assert first["queued"] is True and second["queued"] is False
    assert first["queued_at"] == second["queued_at"] is not None
    assert queued == [project.pk]
    assert client.get(f"/api/projects/{project.pk}/quality/").json()["queued_at"] == first["queued_at"]


def test_a_run_stores_the_report_and_clears_the_queued_mark(labeled, queued, django_capture_on_commit_callbacks):
    project, _ = labeled
    with django_capture_on_commit_callbacks(execute=True):
        assert store.quality_recompute_request(project_id=project.pk)
    assert store.quality_run(project_id=project.pk) == "computed"
    status = store.quality_status(project_id=project.pk)
    assert status["queued_at"] is None and status["report"]["judgments"] == 18
    cache.add(f"quality:{project.pk}:running", "x")
    assert store.quality_run(project_id=project.pk) == "busy"


def test_projects_due_are_those_with_work_newer_than_their_report(labeled):
    project, _ = labeled
    idle = ProjectFactory()
    assert project.pk in store.projects_due() and idle.pk not in store.projects_due()
    store.quality_report_set(report=quality_compute(project_id=project.pk))
    assert project.pk not in store.projects_due()


def test_an_older_report_shape_reads_as_missing(labeled):
    project, _ = labeled
    cache.set(f"quality:{project.pk}", {"version": 0, "project_id": project.pk})
    assert store.quality_status(project_id=project.pk)["report"] is None


def test_dashboard_shows_the_quality_section_from_the_cache(client, labeled):
    project, _ = labeled
    admin = people(project)[Membership.Role.ADMIN]
    client.force_login(admin)
    html = client.get(reverse("project-dashboard", args=[project.pk])).content.decode()
    assert 'data-stat="quality-none"' in html and "Recompute now" in html
    store.quality_report_set(report=quality_compute(project_id=project.pk))
    html = client.get(reverse("project-dashboard", args=[project.pk])).content.decode()
    assert 'id="competence-table"' in html and 'id="alpha-table"' in html and 'id="pair-matrix"' in html
    assert '<tr data-labeler="ann">' in html and 'data-with="ben"' in html
    assert 'data-stat="no-flags"' in html
    data = json.loads(html.split('id="quality-data" type="application/json">')[1].split("</script>")[0])
    assert data["labelers"] == ["ann", "ben", "cid"] and len(data["dawid_skene"]) == 3


def test_the_recompute_button_queues_once(client, labeled, queued, django_capture_on_commit_callbacks):
    project, _ = labeled
    client.force_login(people(project)[Membership.Role.ENGINEER])
    url = reverse("project-quality-recompute", args=[project.pk])
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, follow=True)
        second = client.post(url, follow=True)
    assert queued == [project.pk]
    assert "recompute queued" in first.content.decode() and "already queued" in second.content.decode()
    assert "Recompute queued</button>" in second.content.decode()
    assert client.get(url).status_code == 405


def test_the_periodic_refresh_queues_each_due_project_once(labeled, queued, django_capture_on_commit_callbacks):
    project, _ = labeled
    fresh, _, _ = table_project({"zed": [1, 2], "yan": [1, -1]})
    store.quality_report_set(report=quality_compute(project_id=fresh.pk))
    with django_capture_on_commit_callbacks(execute=True):
        assert store.quality_refresh_all() == 1
        assert store.quality_refresh_all() == 0  # still queued: nothing more
    assert queued == [project.pk]
