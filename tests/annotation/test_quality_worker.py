"""Through a real Celery worker: the recompute request fills the cache that the API and the dashboard read.

Neither reader computes anything: after the worker's run they answer from the cache, without a
single query on the annotation table.
"""

import time

import pytest
from django.urls import reverse

from annotation.models import Membership
from annotation.reliability import store
from tests.annotation.quality_data import table_project
from tests.conftest import api_client_for
from tests.factories import member

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TABLE = {
    "ann": [2, 2, -1, 3, -2, 0, 1, -3],
    "ben": [2, 1, -2, 3, -2, 0, 2, -3],
    "cid": [1, 2, -1, 2, -1, 1, 1, -2],
}


def annotation_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "annotation_annotation" in q["sql"]]


def test_the_worker_fills_the_cache_that_the_api_and_the_dashboard_read(
    celery_worker_process, client, django_assert_max_num_queries
):
    project, _, _ = table_project(TABLE)
    engineer = member(project, Membership.Role.ENGINEER, username="erin")
    api = api_client_for(engineer)
    url = f"/api/projects/{project.pk}/quality/"
    assert api.get(url).json()["status"] == "missing"
    queued = api.post(f"{url}recompute/")
    assert queued.status_code == 202 and queued.json()["queued"] is True

    deadline = time.monotonic() + 120
    while store.quality_status(project_id=project.pk)["report"] is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no report after 120 s\n{celery_worker_process.log_path.read_text()[-4000:]}")
        time.sleep(0.25)

    with django_assert_max_num_queries(1) as captured:
        body = api.get(url).json()
    assert annotation_queries(captured) == []
    assert body["status"] == "ready" and body["queued_at"] is None
    report = body["report"]
    assert report["judgments"] == 24 and report["tasks"] == 8
    assert [row["username"] for row in report["labelers"]] == ["ann", "ben", "cid"]
    assert all(row["dawid_skene"] is not None for row in report["labelers"])
    assert next(row for row in report["alpha"] if row["kind"] == "choice")["alpha"] is not None

    client.force_login(engineer)
    client.get(reverse("project-dashboard", args=[project.pk]))  # fills the dashboard's own 30-second cache
    with django_assert_max_num_queries(8) as captured:
        html = client.get(reverse("project-dashboard", args=[project.pk])).content.decode()
    assert annotation_queries(captured) == []
    assert 'id="competence-table"' in html and '<tr data-labeler="cid">' in html
    assert "quality_compute_project" in celery_worker_process.log_path.read_text()
