"""The admin's export slices: a date range, one labeler, and "since the last export" (which records itself)."""

import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation import services
from annotation.models import Annotation, ExportRecord, Membership
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, TaskFactory, member

pytestmark = pytest.mark.django_db


def export(client, project, query=""):
    response = client.get(f"/api/projects/{project.pk}/export/?format=sft{query}")
    assert response.status_code == 200, response.content
    return [json.loads(line)["messages"][-1]["content"] for line in b"".join(response.streaming_content).decode().splitlines()]


@pytest.fixture
def project_with_work():
    project = ProjectFactory(overlap=2)
    admin = member(project, Membership.Role.ADMIN, username="boss")
    ann, ben = member(project, username="ann"), member(project, username="ben")
    tasks = TaskFactory.create_batch(2, project=project)
    for labeler in (ann, ben):
        for task in tasks:
            services.task_claim_next(project=project, labeler=labeler)
            services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(),
                                       data={"text": f"{labeler.username} on {task.pk}"})
    now = timezone.now()
    for days, annotation in zip((10, 5, 2, 0), Annotation.objects.order_by("id")):
        Annotation.objects.filter(pk=annotation.pk).update(created_at=now - timedelta(days=days))
    return project, admin, now


def test_date_range_and_labeler(project_with_work):
    project, admin, now = project_with_work
    client = api_client_for(admin)
    assert len(export(client, project)) == 4
    week_ago = (now - timedelta(days=7)).date().isoformat()
    assert len(export(client, project, f"&since={week_ago}")) == 3
    three_days_ago = (now - timedelta(days=3)).date().isoformat()
    assert len(export(client, project, f"&since={week_ago}&until={three_days_ago}")) == 1
    assert all(text.startswith("ann ") for text in export(client, project, "&labeler=ann"))
    bad = client.get(f"/api/projects/{project.pk}/export/?format=sft&until=soon")
    assert bad.status_code == 400 and bad.json()["field"] == "until"
    backwards = client.get(f"/api/projects/{project.pk}/export/?format=sft&since=2026-02-02&until=2026-02-01")
    assert backwards.status_code == 400 and backwards.json()["field"] == "since"


def test_since_the_last_export_picks_up_where_the_last_complete_one_started(project_with_work):
    project, admin, now = project_with_work
    client = api_client_for(admin)
    assert len(export(client, project, "&since_last_export=true")) == 4  # no export yet: everything
    record = ExportRecord.objects.get(project=project)
    assert (record.format, record.rows, record.created_by) == ("sft", 4, admin)
    assert export(client, project, "&since_last_export=true") == []  # nothing new since
    task = TaskFactory(project=project)
    labeler = member(project, username="cy")
    services.task_claim_next(project=project, labeler=labeler)
    services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data={"text": "new work"})
    assert export(client, project, "&since_last_export=true") == ["new work"]
    # The command records its exports too, and reads the same record.
    call_command("export_project", project.slug, "--format", "sft", "--since-last-export", "--output", "/dev/null")
    assert ExportRecord.objects.filter(project=project).count() == 4
    assert ExportRecord.objects.order_by("-started_at").first().rows == 0


def test_a_run_takes_dates_but_not_since_last_export():
    from training.services import run_data_validate

    assert run_data_validate(kind="sft", data={"since": "2026-01-01"}).since == "2026-01-01"
    from annotation.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        run_data_validate(kind="sft", data={"since_last_export": True})
    assert refused.value.field == "data.since_last_export"
