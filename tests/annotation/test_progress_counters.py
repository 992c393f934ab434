"""The rolled-up progress counters equal a scan of the tasks after every kind of write, on PostgreSQL."""

import uuid

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum

from annotation import selectors, services, undo
from annotation.models import ProgressCounter, Project, Task
from tests.factories import ProjectFactory, TaskFactory, comparison_task, gold_comparison_task, member

pytestmark = pytest.mark.django_db


def scanned(project) -> dict:
    rows = (
        Task.objects.filter(project=project, is_gold=False).values("kind")
        .annotate(tasks=Count("id"), done_tasks=Count("id", filter=Q(status="done")), annotations=Sum("done"),
                  required=Sum("required"))
    )
    return {r["kind"]: (r["tasks"], r["done_tasks"], r["annotations"], r["required"]) for r in rows}


def counted(project) -> dict:
    by_kind = selectors.project_progress(project=project)["by_kind"]
    return {k: (v["tasks"], v["done_tasks"], v["annotations"], v["required"]) for k, v in by_kind.items()}


def test_counters_follow_inserts_submits_undo_raw_updates_gold_flips_and_deletes():
    project = ProjectFactory(overlap=2)
    other = ProjectFactory(overlap=1)
    demos = TaskFactory.create_batch(3, project=project)
    pair = comparison_task(project=project)
    gold_comparison_task(project=project)
    TaskFactory(project=other)
    alice, bob = member(project, username="alice"), member(project, username="bob")
    assert counted(project) == scanned(project) == {"demonstration": (3, 0, 0, 6), "comparison": (1, 0, 0, 2)}

    for labeler in (alice, bob):
        task = services.task_claim_next(project=project, labeler=labeler, kind="demonstration")
        annotation, _ = services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(),
                                                   data={"text": "x"})
    assert counted(project)["demonstration"] == (3, 1, 2, 6) == scanned(project)["demonstration"]

    undo.annotation_undo(annotation_id=annotation.pk, labeler=bob)
    assert counted(project) == scanned(project)

    with connection.cursor() as cursor:  # a writer that bypasses the ORM entirely
        cursor.execute("UPDATE annotation_task SET required = required + 1 WHERE id = %s", [pair.pk])
    Task.objects.filter(pk=demos[2].pk).update(is_gold=True)
    Task.objects.filter(pk=demos[1].pk).delete()
    assert counted(project) == scanned(project) == {"demonstration": (1, 0, 1, 2), "comparison": (1, 0, 0, 3)}
    assert counted(other) == scanned(other) == {"demonstration": (1, 0, 0, 1)}

    shards = set(ProgressCounter.objects.filter(project_id=project.pk).values_list("shard", flat=True))
    assert shards <= set(range(ProgressCounter.SHARDS))
    pk = project.pk
    Project.objects.filter(pk=pk).delete()
    assert not ProgressCounter.objects.filter(project_id=pk).exists()
    assert counted(other) == scanned(other)
