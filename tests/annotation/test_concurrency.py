"""Claim invariants under real concurrency: one thread per labeler, each with its own connection."""

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.db.models import Count

from annotation.models import Annotation, Lease, Task
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = pytest.mark.django_db(transaction=True)

LABELERS = 32
TASKS = 120


def _run_in_threads(count, work):
    barrier = threading.Barrier(count)

    def wrapped(index):
        try:
            barrier.wait(timeout=30)
            return work(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(wrapped, range(count)))


def test_claim_invariants_with_32_concurrent_labelers():
    project = ProjectFactory(overlap=2)
    labelers = [member(project) for _ in range(LABELERS)]
    for index in range(TASKS):
        if index % 3:
            TaskFactory(project=project)
        else:
            comparison_task(project=project, texts=(f"A{index}", f"B{index}"))
    clients = [api_client_for(user) for user in labelers]
    over_capacity = []

    def label(index):
        client, stored = clients[index], []
        while True:
            claimed = client.post(f"/api/projects/{project.pk}/next/")
            if claimed.status_code == 204:
                return stored
            assert claimed.status_code == 200, claimed.content
            task = claimed.json()
            # One statement, one snapshot: leases plus annotations as another labeler would see them.
            row = Task.objects.filter(pk=task["id"]).annotate(live=Count("leases")).values("done", "live").get()
            if row["live"] + row["done"] > 2:
                over_capacity.append(task["id"])
            body = {"client_id": str(uuid.uuid4()), "time_spent_ms": 5}
            if task["kind"] == "demonstration":
                body["text"] = f"Answer by labeler {index}"
            else:
                ids = [r["id"] for r in task["responses"]]
                body.update(ranking=[[ids[0]], [ids[1]]], strength="better")
            submitted = client.post(f"/api/tasks/{task['id']}/annotations/", body, format="json")
            assert submitted.status_code == 201, submitted.content
            stored.append((body["client_id"], task["id"]))

    results = _run_in_threads(LABELERS, label)

    submitted = [item for per_labeler in results for item in per_labeler]
    per_task = Counter(task_id for _, task_id in submitted)
    assert max(per_task.values()) == 2, "no task gets more than 2 annotations"
    assert not over_capacity, "live leases plus annotations never exceeded the overlap"
    pairs = Annotation.objects.values("task", "labeler").annotate(n=Count("id")).filter(n__gt=1)
    assert not pairs.exists(), "no labeler annotates a task twice"
    stored_ids = {str(c) for c in Annotation.objects.values_list("client_id", flat=True)}
    assert stored_ids == {client_id for client_id, _ in submitted}, "every submit is stored"
    assert len(submitted) == TASKS * 2
    tasks = Task.objects.annotate(n=Count("annotations"))
    assert all(t.status == Task.Status.DONE for t in tasks), "every task ends done"
    assert all(t.done == t.n == 2 for t in tasks), "the done count equals the stored annotations"
    assert Lease.objects.count() == 0


def test_the_same_client_id_submitted_concurrently_stores_one_annotation():
    project = ProjectFactory()
    labeler = member(project)
    task = TaskFactory(project=project)
    client = api_client_for(labeler)
    assert client.post(f"/api/projects/{project.pk}/next/").status_code == 200
    client_id = str(uuid.uuid4())
    body = {"client_id": client_id, "text": "Submitted from many tabs at once."}

    def post(_):
        return api_client_for(labeler).post(f"/api/tasks/{task.pk}/annotations/", body, format="json")

    responses = _run_in_threads(8, post)
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 200: 7}, codes
    assert len({r.json()["id"] for r in responses}) == 1
    assert Annotation.objects.filter(client_id=client_id).count() == 1
    task.refresh_from_db()
    assert task.done == 1


def test_one_labeler_claiming_from_many_tabs_holds_one_lease():
    project = ProjectFactory(overlap=1)
    labeler = member(project)
    TaskFactory.create_batch(10, project=project)

    def claim(_):
        return api_client_for(labeler).post(f"/api/projects/{project.pk}/next/").json()["id"]

    assert len(set(_run_in_threads(6, claim))) == 1
    assert Lease.objects.filter(labeler=labeler).count() == 1
    assert connection.vendor in ("postgresql", "sqlite")
