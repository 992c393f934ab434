"""Review invariants under real concurrency: one thread per reviewer or labeler, each with its own connection.

Reviewers claim and decide at once over HTTP. No annotation is reviewed twice, every queued item
is reviewed once, no reviewer gets their own work, verdicts are idempotent, and each rejection
reopens exactly one slot: the task's `done` and status follow, and of many labelers racing for
the slot, one gets it.
"""

import uuid
from collections import Counter, defaultdict

import pytest
from django.db.models import Count, F, Q

from annotation import services
from annotation.models import Annotation, Lease, Membership, ReviewItem, Task
from annotation.reviews.sampling import review_items_enqueue
from tests.annotation.test_concurrency import _run_in_threads
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = pytest.mark.django_db(transaction=True)

REVIEWERS = 12
NEWCOMERS = 16
TASKS = 45
OVERLAP = 2
# Task.done's invariant: the stored annotations that are not skips and not rejected or corrected.
COUNTING = Count("annotations", filter=~Q(annotations__kind="skip")
                 & ~Q(annotations__review_state__in=["rejected", "corrected"]))


def _verdict_for(body: dict) -> dict:
    """A verdict fixed by the annotation's id: a third accepted, a third rejected, a third corrected."""
    choice = body["annotation"]["id"] % 3
    if choice == 0:
        return {"verdict": "accepted"}
    if choice == 1:
        return {"verdict": "rejected", "comment": f"Not good enough ({body['annotation']['id']})."}
    if body["task"]["kind"] == "demonstration":
        return {"verdict": "corrected", "correction": {"text": f"Corrected {body['annotation']['id']}."}}
    ids = [r["id"] for r in body["task"]["responses"]]
    return {"verdict": "corrected", "correction": {"ranking": [[ids[1]], [ids[0]]], "strength": "much_better"}}


def _label_everything(project, labelers):
    """Each task gets OVERLAP annotations, in turn, through the real claim and submit services."""
    turn = 0
    while True:
        progressed = False
        for labeler in labelers[turn % len(labelers):] + labelers[:turn % len(labelers)]:
            task = services.task_claim_next(project=project, labeler=labeler)
            if task is None:
                continue
            if task.kind == Task.Kind.DEMONSTRATION:
                data = {"text": f"Answer by {labeler.username}."}
            else:
                ids = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
                data = {"ranking": [[ids[0]], [ids[1]]], "strength": "better"}
            services.annotation_submit(task=task, labeler=labeler, client_id=uuid.uuid4(), data=data)
            progressed = True
        turn += 1
        if not progressed:
            return


def test_review_invariants_with_12_concurrent_reviewers_then_16_labelers_racing_for_the_reopened_slots():
    project = ProjectFactory(overlap=OVERLAP)
    # Four of the reviewers also label, so the queue holds their own work too.
    reviewers = [member(project, Membership.Role.REVIEWER, username=f"reviewer{i}") for i in range(REVIEWERS)]
    labelers = [member(project, username=f"labeler{i}") for i in range(3)] + reviewers[:4]
    for index in range(TASKS):
        if index % 3:
            TaskFactory(project=project)
        else:
            comparison_task(project=project, texts=(f"A{index}", f"B{index}"))
    _label_everything(project, labelers)
    work = list(Annotation.objects.filter(project=project).values_list("pk", flat=True))
    assert len(work) == TASKS * OVERLAP
    assert review_items_enqueue(annotation_ids=work, reason="concurrency check") == len(work)
    authors = dict(Annotation.objects.values_list("pk", "labeler_id"))
    annotated = defaultdict(set)  # reviewer -> tasks they labeled before reviewing
    for task_id, labeler_id in Annotation.objects.values_list("task_id", "labeler_id"):
        annotated[labeler_id].add(task_id)
    clients = [api_client_for(user) for user in reviewers]
    problems = []

    def review(index):
        client, me, decided = clients[index], reviewers[index].pk, []
        while True:
            claimed = client.post(f"/api/projects/{project.pk}/reviews/next/")
            if claimed.status_code == 204:
                return decided
            assert claimed.status_code == 200, claimed.content
            body = claimed.json()
            if authors[body["annotation"]["id"]] == me:
                problems.append(("own work", me, body["id"]))
            if body["task"]["id"] in annotated[me]:
                problems.append(("a task they annotated", me, body["id"]))
            verdict = {**_verdict_for(body), "client_id": str(uuid.uuid4())}
            url = f"/api/reviews/{body['id']}/verdict/"
            first = client.post(url, verdict, format="json")
            again = client.post(url, verdict, format="json")  # a retry: the same verdict, stored once
            if first.status_code != 201 or again.status_code != 200 or first.json() != again.json():
                problems.append(("verdict", me, body["id"], first.status_code, again.status_code, first.content))
                return decided
            decided.append((body["id"], verdict["verdict"], body["task"]["id"]))

    results = _run_in_threads(REVIEWERS, review)

    assert not problems, problems[:5]
    decided = [entry for per_reviewer in results for entry in per_reviewer]
    item_ids = [item_id for item_id, _, _ in decided]
    assert len(item_ids) == len(set(item_ids)), "no annotation is reviewed twice"
    assert set(item_ids) == set(ReviewItem.objects.values_list("pk", flat=True)), "every queued item is reviewed"
    assert not ReviewItem.objects.filter(status="pending").exists()
    assert not ReviewItem.objects.filter(leased_by__isnull=False).exists()
    stored = dict(ReviewItem.objects.values_list("pk", "verdict"))
    assert all(stored[item_id] == verdict for item_id, verdict, _ in decided), "each verdict is the one sent"
    assert not ReviewItem.objects.filter(reviewer_id=F("labeler_id")).exists()
    rejections = Counter(task_id for _, verdict, task_id in decided if verdict == "rejected")
    corrections = Counter(task_id for _, verdict, task_id in decided if verdict == "corrected")
    assert rejections and corrections
    for task in Task.objects.filter(project=project).annotate(counting=COUNTING):
        assert task.done == task.counting == OVERLAP - rejections[task.pk], "done = the annotations that count"
        assert task.status == ("open" if rejections[task.pk] else "done")

    # Newcomers race for the reopened slots: each rejection gives exactly one of them a label.
    newcomers = [member(project, username=f"newcomer{i}") for i in range(NEWCOMERS)]
    newcomer_clients = [api_client_for(user) for user in newcomers]
    over_capacity = []

    def label(index):
        client, stored_work = newcomer_clients[index], []
        while True:
            claimed = client.post(f"/api/projects/{project.pk}/next/")
            if claimed.status_code == 204:
                return stored_work
            assert claimed.status_code == 200, claimed.content
            task = claimed.json()
            row = Task.objects.filter(pk=task["id"]).annotate(live=Count("leases")).values("done", "live").get()
            if row["live"] + row["done"] > OVERLAP:
                over_capacity.append(task["id"])
            body = {"client_id": str(uuid.uuid4())}
            if task["kind"] == "demonstration":
                body["text"] = f"Newcomer {index}'s answer."
            else:
                ids = [r["id"] for r in task["responses"]]
                body.update(ranking=[[ids[0], ids[1]]])
            submitted = client.post(f"/api/tasks/{task['id']}/annotations/", body, format="json")
            assert submitted.status_code == 201, submitted.content
            stored_work.append(task["id"])

    relabeled = Counter(task_id for per_labeler in _run_in_threads(NEWCOMERS, label) for task_id in per_labeler)

    assert not over_capacity, "live leases plus counting annotations never exceeded the overlap"
    assert relabeled == rejections, "each rejection reopened exactly one slot, taken by exactly one newcomer"
    assert Lease.objects.count() == 0
    for task in Task.objects.filter(project=project).annotate(counting=COUNTING):
        assert task.done == task.counting == OVERLAP and task.status == "done"
    pairs = Annotation.objects.values("task", "labeler").annotate(n=Count("id")).filter(n__gt=1)
    assert not pairs.exists(), "no one annotates a task twice, corrections included"

