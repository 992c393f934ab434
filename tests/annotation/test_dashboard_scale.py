"""The dashboard and the project list read rolled-up figures: as many queries for 2 tasks as for 40, and the
dashboard's page load reads no task or annotation table (annotation/dashboard.py's module doc)."""

import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation import dashboard
from annotation.models import Annotation, Membership, Task
from annotation.tasks import dashboard_refresh
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = pytest.mark.django_db


def project_of(tasks: int, *, admin):
    """A project of `tasks` tasks, half comparisons, with one annotation or skip on every task."""
    project = ProjectFactory(overlap=1)
    Membership.objects.create(project=project, user=admin, role=Membership.Role.ADMIN)
    labeler = member(project)
    for i in range(tasks):
        task = comparison_task(project=project) if i % 2 else TaskFactory(project=project)
        kind = Annotation.Kind.SKIP if i % 5 == 0 else task.kind
        shown = list(task.task_responses.values_list("response_id", flat=True))
        Annotation.objects.create(
            task=task, project=project, labeler=labeler, kind=kind, client_id=uuid.uuid4(), time_spent_ms=900 + i,
            text="An answer." if kind == Annotation.Kind.DEMONSTRATION else "",
            ranking=[[pk] for pk in shown] if kind == Annotation.Kind.COMPARISON else [],
        )
        if kind != Annotation.Kind.SKIP:
            Task.objects.filter(pk=task.pk).update(done=1, status=Task.Status.DONE)
    return project


@pytest.fixture
def admin():
    from tests.factories import UserFactory

    return UserFactory(username="scale-admin")


@pytest.fixture
def rollup_for_every_project(monkeypatch):
    """Every project is "big": its page reads the rollup a worker keeps, as a million-task project's does."""
    monkeypatch.setattr(dashboard, "FIGURES_INLINE_ROWS", 0)


def test_a_dashboard_page_load_reads_no_task_or_annotation_rows(client, admin, rollup_for_every_project):
    counts = []
    for tasks in (2, 40):
        project = project_of(tasks, admin=admin)
        assert dashboard.dashboard_figures_refresh(project_id=project.pk)  # what the Celery task does
        client.force_login(admin)
        with CaptureQueriesContext(connection) as captured:
            data = dashboard.dashboard_get_cached(project=project)
        sql = [q["sql"] for q in captured.captured_queries]
        assert not [q for q in sql if 'FROM "annotation_task"' in q or 'FROM "annotation_annotation"' in q], sql
        counts.append(len(sql))
        assert data["progress"]["tasks"] == tasks
        assert data["progress"]["skips"] == len(range(0, tasks, 5))
        assert sum(row["annotations"] + row["skips"] for row in data["labelers"]) == tasks
        with CaptureQueriesContext(connection) as page:
            assert client.get(f"/projects/{project.pk}/dashboard/").status_code == 200
        counts.append(len(page.captured_queries))
    # The bigger project costs no more (the page's first load in a process may warm a cache or two).
    assert counts[2] == counts[0] and counts[3] <= counts[1], counts


def test_a_big_project_without_a_rollup_shows_progress_and_queues_one(client, admin, rollup_for_every_project,
                                                                      monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("annotation.tasks.dashboard_refresh.delay", queued.append)
    project = project_of(10, admin=admin)
    client.force_login(admin)
    with CaptureQueriesContext(connection) as captured, django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"/projects/{project.pk}/dashboard/")
        html = response.content.decode()
    assert response.status_code == 200
    assert 'data-stat="figures-pending"' in html
    # Gold tasks are read through their own partial index (task_gold_*): a few rows, not the project's tasks.
    assert not [q for q in captured.captured_queries
                if ('FROM "annotation_task"' in q["sql"] and '("annotation_task"."is_gold" AND' not in q["sql"])
                or 'FROM "annotation_annotation"' in q["sql"]]
    assert queued == [project.pk]  # once, after the request's transaction
    cache.delete(f"dashboard:{project.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        client.get(f"/projects/{project.pk}/dashboard/")
    assert queued == [project.pk]  # not again while the first is queued
    assert dashboard_refresh(project.pk) is True  # the Celery task, as a worker runs it
    assert dashboard_refresh(10**9) is False  # a project deleted since it was queued
    cache.delete(f"dashboard:{project.pk}")
    html = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'data-stat="figures-pending"' not in html


@pytest.mark.parametrize("url", ["/", "/api/projects/"])
def test_the_project_list_costs_the_same_queries_for_any_number_of_tasks(client, admin, url):
    counts = []
    for tasks in (2, 40):
        project_of(tasks, admin=admin)
        client.force_login(admin)
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        counts.append(len(captured.captured_queries))
        assert not [q for q in captured.captured_queries if 'FROM "annotation_annotation"' in q["sql"]]
    assert counts[1] <= counts[0], counts
