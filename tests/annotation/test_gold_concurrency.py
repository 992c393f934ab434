"""Gold serving under real concurrency on PostgreSQL: one connection per thread, as in test_concurrency.py."""

import time
import uuid
from collections import Counter, defaultdict

import pytest
from django.db.models import Count, F, Q

from annotation.models import Annotation, GoldRecord, Lease, Task
from tests.annotation.test_concurrency import _run_in_threads
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, TaskFactory, comparison_task, gold_comparison_task, member

pytestmark = pytest.mark.django_db(transaction=True)


def _answer(client, task: dict, index: int) -> tuple[int, dict]:
    body = {"client_id": str(uuid.uuid4()), "time_spent_ms": 5}
    if task["kind"] == "demonstration":
        body["text"] = f"Answer {index}"
    else:
        ids = [r["id"] for r in task["responses"]]
        body.update(ranking=[[ids[0]], [ids[1]]], strength="better")
    response = client.post(f"/api/tasks/{task['id']}/annotations/", body, format="json")
    return response.status_code, body


def test_one_labeler_in_many_threads_is_never_served_a_gold_task_again():
    project = ProjectFactory(overlap=1, gold_rate=0.5)
    labeler = member(project)
    golds = {gold_comparison_task(project=project, texts=(f"R{i}", f"W{i}")).pk for i in range(25)}
    TaskFactory.create_batch(40, project=project)
    events = []  # (claim sent, task id) and (submit answered, task id) with wall-clock times

    def work(index):
        client = api_client_for(labeler)
        while True:
            sent = time.monotonic()
            claimed = client.post(f"/api/projects/{project.pk}/next/")
            if claimed.status_code == 204:
                return
            assert claimed.status_code == 200, claimed.content
            task = claimed.json()
            events.append(("claim", sent, task["id"]))
            code, _ = _answer(client, task, index)
            # Threads share the labeler's lease, so another thread may have submitted this task first.
            assert code in (201, 409), code
            if code == 201:
                events.append(("stored", time.monotonic(), task["id"]))

    _run_in_threads(8, work)

    stored_at = {task_id: at for kind, at, task_id in events if kind == "stored"}
    served_after = [task_id for kind, sent, task_id in events
                    if kind == "claim" and task_id in stored_at and sent > stored_at[task_id]]
    assert not served_after, "no claim sent after a task was stored returned it again"
    gold_done = Annotation.objects.filter(labeler=labeler, task__is_gold=True)
    assert gold_done.values("task").annotate(n=Count("id")).filter(n__gt=1).count() == 0
    record = GoldRecord.objects.get(project=project, labeler=labeler)
    assert record.gold_served == gold_done.count() > 0, "each gold task served once, and answered"
    assert set(gold_done.values_list("task_id", flat=True)) <= golds
    assert Annotation.objects.filter(labeler=labeler, task__is_gold=False).count() == 40
    assert not Lease.objects.exists()


def test_gold_and_qualification_keep_every_real_task_invariant_with_16_concurrent_labelers():
    project = ProjectFactory(overlap=2, gold_rate=0.25, qualification_tasks=2, qualification_min_accuracy=0)
    labelers = [member(project) for _ in range(16)]
    for i in range(12):
        gold_comparison_task(project=project, texts=(f"Right {i}", f"Wrong {i}"))
    for index in range(60):
        if index % 3:
            TaskFactory(project=project)
        else:
            comparison_task(project=project, texts=(f"A{index}", f"B{index}"))
    clients = [api_client_for(user) for user in labelers]
    over_capacity = []

    def label(index):
        client, served = clients[index], []
        while True:
            claimed = client.post(f"/api/projects/{project.pk}/next/")
            if claimed.status_code == 204:
                return served
            assert claimed.status_code == 200, claimed.content
            task = claimed.json()
            row = (Task.objects.filter(pk=task["id"]).annotate(live=Count("leases"))
                   .values("done", "live", "required", "is_gold").get())
            if not row["is_gold"] and row["live"] + row["done"] > row["required"]:
                over_capacity.append(task["id"])
            code, body = _answer(client, task, index)
            assert code == 201, code
            served.append((task["id"], row["is_gold"], body["client_id"]))

    results = _run_in_threads(len(labelers), label)

    assert not over_capacity, "live leases plus annotations never exceeded a real task's overlap"
    for served in results:
        assert [is_gold for _, is_gold, _ in served[:2]] == [True, True], "qualification first: gold only"
        gold_ids = [task_id for task_id, is_gold, _ in served if is_gold]
        assert len(gold_ids) == len(set(gold_ids)), "never the same gold task twice"
    submitted = {client_id for served in results for _, _, client_id in served}
    assert {str(c) for c in Annotation.objects.values_list("client_id", flat=True)} == submitted
    real = Task.objects.filter(project=project, is_gold=False).annotate(n=Count("annotations"))
    assert all(t.status == Task.Status.DONE and t.done == t.n == 2 for t in real)
    gold = Task.objects.filter(project=project, is_gold=True).annotate(n=Count("annotations"))
    assert all(t.status == Task.Status.OPEN and t.done == t.n for t in gold), "gold: open, done counts them"
    assert not Annotation.objects.values("task", "labeler").annotate(n=Count("id")).filter(n__gt=1).exists()
    # Each record's counts equal what the annotations say.
    per_labeler = defaultdict(Counter)
    for labeler_id, correct in Annotation.objects.filter(task__is_gold=True).values_list("labeler_id", "gold_correct"):
        per_labeler[labeler_id]["answered"] += correct is not None
        per_labeler[labeler_id]["correct"] += bool(correct)
        per_labeler[labeler_id]["served"] += 1
    records = GoldRecord.objects.filter(project=project)
    assert records.count() == 16
    assert not records.exclude(status=GoldRecord.Status.QUALIFIED).exists()
    for record in records:
        counts = per_labeler[record.labeler_id]
        assert (record.gold_served, record.gold_answered, record.gold_correct) == (
            counts["served"], counts["answered"], counts["correct"])
    assert not records.filter(Q(gold_correct__gt=F("gold_answered"))).exists()
    assert Lease.objects.count() == 0
