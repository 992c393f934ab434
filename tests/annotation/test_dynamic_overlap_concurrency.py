"""Dynamic overlap under real concurrency: one thread per labeler, each with its own connection, on PostgreSQL."""

import time
import uuid

import pytest
from django.db.models import Count

from annotation import overlap
from annotation.models import Annotation, Task
from tests.annotation.test_concurrency import _run_in_threads
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, comparison_task, member

pytestmark = pytest.mark.django_db(transaction=True)

LABELERS = 16
TASKS = 40
MAX_OVERLAP = 4
THRESHOLD = 0.7  # 2 of 3 (0.67) is not enough, 3 of 4 (0.75) is


def test_disagreements_grow_one_slot_at_a_time_and_never_past_the_maximum_under_16_concurrent_labelers():
    project = ProjectFactory(overlap=2, dynamic_overlap=True, max_overlap=MAX_OVERLAP, agreement_threshold=THRESHOLD)
    labelers = [member(project) for _ in range(LABELERS)]
    tasks = [comparison_task(project=project, texts=(f"A{i}", f"B{i}")) for i in range(TASKS)]
    consensus = {task.pk for index, task in enumerate(tasks) if index % 4 == 0}  # everyone picks the first
    clients = [api_client_for(user) for user in labelers]
    over_capacity = []

    def label(index):
        client, stored = clients[index], []
        while True:
            claimed = client.post(f"/api/projects/{project.pk}/next/")
            if claimed.status_code == 204:
                # Nothing free now; a disagreement elsewhere may still open a slot that is this labeler's.
                waiting = Task.objects.filter(project=project, status="open").exclude(annotations__labeler=labelers[index])
                if not waiting.exists():
                    return stored
                time.sleep(0.02)
                continue
            assert claimed.status_code == 200, claimed.content
            task = claimed.json()
            row = Task.objects.filter(pk=task["id"]).annotate(live=Count("leases")).values("done", "live", "required")
            row = row.get()
            if row["live"] + row["done"] > row["required"]:
                over_capacity.append(task["id"])
            ids = sorted(r["id"] for r in task["responses"])
            best = 0 if task["id"] in consensus else (index * 7 + task["id"]) % 2
            body = {"client_id": str(uuid.uuid4()), "ranking": [[ids[best]], [ids[1 - best]]], "strength": "better"}
            submitted = client.post(f"/api/tasks/{task['id']}/annotations/", body, format="json")
            assert submitted.status_code == 201, submitted.content
            stored.append(body["client_id"])

    results = _run_in_threads(LABELERS, label)

    assert not over_capacity, "live leases plus annotations never exceeded the task's required count"
    submitted = {client_id for per_labeler in results for client_id in per_labeler}
    assert submitted == {str(c) for c in Annotation.objects.values_list("client_id", flat=True)}
    assert not Annotation.objects.values("task", "labeler").annotate(n=Count("id")).filter(n__gt=1).exists()
    grew = 0
    for task in Task.objects.all():
        rankings = list(task.annotations.order_by("id").values_list("ranking", flat=True))
        # Replay the rule in the order the submits took the task's lock (ids follow it): each label
        # that fills the task adds exactly one slot if the labels so far disagree, and none at the cap.
        required = 2
        for count in range(2, len(rankings) + 1):
            if count == required and count < MAX_OVERLAP and overlap.needs_another_label(
                rankings=rankings[:count], threshold=THRESHOLD
            ):
                required += 1
        assert (task.required, task.done, len(rankings)) == (required, required, required), task.pk
        assert task.status == "done" and task.required <= MAX_OVERLAP
        if task.pk in consensus:
            assert task.required == 2, "agreement adds no slot"
        grew += task.required > 2
    assert grew >= 5, "the split votes disagreed somewhere"
