"""Undo of the last submit and the "My work" list, over the API: the slot reopens for the same labeler."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.models import Annotation, GoldRecord, Lease, Membership, Response, ReviewItem, Task
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, TaskFactory, comparison_task, gold_comparison_task, member

pytestmark = pytest.mark.django_db


def submit_next(client, project, body):
    task = client.post(f"/api/projects/{project.pk}/next/").json()
    body = {"client_id": str(uuid.uuid4()), **body}
    response = client.post(f"/api/tasks/{task['id']}/annotations/", body, format="json")
    assert response.status_code == 201, response.content
    return task, response.json()


def ranking_of(task, order=(0, 1)):
    ids = [r["id"] for r in task["responses"]]
    return [[ids[i]] for i in order]


@pytest.fixture
def pair_project():
    project = ProjectFactory(overlap=1)
    tasks = [comparison_task(project=project) for _ in range(3)]
    alice = member(project, username="alice")
    return project, tasks, alice


def test_undo_reopens_the_slot_for_the_same_labeler_and_returns_the_draft(pair_project):
    project, tasks, alice = pair_project
    bob = member(project, username="bob")
    client = api_client_for(alice)
    task = client.post(f"/api/projects/{project.pk}/next/").json()
    ids = [r["id"] for r in task["responses"]]
    body = {"client_id": str(uuid.uuid4()), "ranking": [[ids[1]], [ids[0]]], "strength": "much_better",
            "rationale": "second is clearer"}
    stored = client.post(f"/api/tasks/{task['id']}/annotations/", body, format="json").json()
    assert Task.objects.get(pk=task["id"]).status == Task.Status.DONE
    following = client.post(f"/api/projects/{project.pk}/next/").json()  # the page claims the next one
    assert following["id"] != task["id"]

    response = client.post(f"/api/annotations/{stored['id']}/undo/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["task_id"] == task["id"]
    assert body["draft"]["choice"] == "2" and body["draft"]["strength"] == "much_better"
    assert body["draft"]["groups"] == [[2], [1]] and body["draft"]["rationale"] == "second is clearer"
    assert body["label_url"] == f"/projects/{project.pk}/label/comparison/"
    assert not Annotation.objects.filter(pk=stored["id"]).exists()
    reopened = Task.objects.get(pk=task["id"])
    assert (reopened.done, reopened.status) == (0, Task.Status.OPEN)
    # The slot is alice's: she holds the only lease, and the task she was handed after is free again.
    assert list(Lease.objects.filter(task_id=task["id"]).values_list("labeler__username", flat=True)) == ["alice"]
    assert not Lease.objects.filter(task_id=following["id"]).exists()
    assert client.post(f"/api/projects/{project.pk}/next/").json()["id"] == task["id"]
    bob_task = api_client_for(bob).post(f"/api/projects/{project.pk}/next/").json()
    assert bob_task["id"] != task["id"]
    # She answers again, differently; it counts once.
    again = {"client_id": str(uuid.uuid4()), "ranking": [[ids[0]], [ids[1]]], "strength": "better"}
    assert client.post(f"/api/tasks/{task['id']}/annotations/", again, format="json").status_code == 201
    assert Task.objects.get(pk=task["id"]).done == 1


def test_only_the_latest_submit_and_only_ones_own_can_be_undone(pair_project):
    project, tasks, alice = pair_project
    client = api_client_for(alice)
    t1 = client.post(f"/api/projects/{project.pk}/next/").json()
    first = client.post(f"/api/tasks/{t1['id']}/annotations/", {"client_id": str(uuid.uuid4()),
                        "ranking": ranking_of(t1), "strength": "better"}, format="json").json()
    t2 = client.post(f"/api/projects/{project.pk}/next/").json()
    second = client.post(f"/api/tasks/{t2['id']}/annotations/", {"client_id": str(uuid.uuid4()),
                         "ranking": ranking_of(t2), "strength": "better"}, format="json").json()

    older = client.post(f"/api/annotations/{first['id']}/undo/")
    assert older.status_code == 409 and "latest" in older.json()["detail"]
    mallory = member(project, username="mallory")
    assert api_client_for(mallory).post(f"/api/annotations/{second['id']}/undo/").status_code == 404
    assert api_client_for(mallory).post("/api/annotations/999999999/undo/").status_code == 404
    assert Annotation.objects.filter(pk__in=[first["id"], second["id"]]).count() == 2


def test_too_old_reviewed_or_snapshotted_work_stays(pair_project, settings):
    project, tasks, alice = pair_project
    client = api_client_for(alice)
    t = client.post(f"/api/projects/{project.pk}/next/").json()
    stored = client.post(f"/api/tasks/{t['id']}/annotations/", {"client_id": str(uuid.uuid4()),
                         "ranking": ranking_of(t), "strength": "better"}, format="json").json()
    annotation = Annotation.objects.get(pk=stored["id"])

    Annotation.objects.filter(pk=annotation.pk).update(created_at=timezone.now() - timedelta(seconds=301))
    too_old = client.post(f"/api/annotations/{annotation.pk}/undo/")
    assert too_old.status_code == 409 and "5 minutes" in too_old.json()["detail"]
    settings.UNDO_SECONDS = 3600

    Annotation.objects.filter(pk=annotation.pk).update(review_state=Annotation.ReviewState.ACCEPTED)
    assert "reviewer" in client.post(f"/api/annotations/{annotation.pk}/undo/").json()["detail"]
    Annotation.objects.filter(pk=annotation.pk).update(review_state="")

    reviewer = member(project, Membership.Role.REVIEWER, username="rita")
    item = ReviewItem.objects.create(project=project, annotation=annotation, task_id=t["id"], labeler=alice,
                                     reason="sample", leased_by=reviewer,
                                     lease_expires_at=timezone.now() + timedelta(minutes=5))
    assert "reviewer is looking" in client.post(f"/api/annotations/{annotation.pk}/undo/").json()["detail"]
    item.delete()

    from training.models import DatasetSnapshot

    DatasetSnapshot.objects.create(project=project, format="preference", path="x", sha256="0" * 64, row_count=1)
    in_snapshot = client.post(f"/api/annotations/{annotation.pk}/undo/")
    assert in_snapshot.status_code == 409 and "snapshot" in in_snapshot.json()["detail"]
    assert Annotation.objects.filter(pk=annotation.pk).exists()
    assert Task.objects.get(pk=t["id"]).done == 1


def test_undo_of_a_demonstration_removes_its_response_and_pending_review():
    project = ProjectFactory(overlap=1, review_rate=1.0)
    TaskFactory(project=project)
    alice = member(project, username="alice")
    client = api_client_for(alice)
    task, stored = submit_next(client, project, {"text": "My careful answer."})
    annotation = Annotation.objects.get(pk=stored["id"])
    assert ReviewItem.objects.filter(annotation=annotation).exists()
    response_id = annotation.response_id

    body = client.post(f"/api/annotations/{annotation.pk}/undo/").json()

    assert body["draft"] == {"text": "My careful answer."}
    assert not Response.objects.filter(pk=response_id).exists()
    assert not ReviewItem.objects.filter(task_id=task["id"]).exists()
    assert body["label_url"].endswith("/label/demonstration/")


def test_undo_of_a_skip_reopens_nothing_but_gives_the_task_back():
    project = ProjectFactory(overlap=1)
    task = TaskFactory(project=project)
    alice = member(project, username="alice")
    services.task_claim_next(project=project, labeler=alice)
    skip, _ = services.task_skip(task=task, labeler=alice, reason="unclear", client_id=uuid.uuid4())
    client = api_client_for(alice)
    assert client.post(f"/api/annotations/{skip.pk}/undo/").status_code == 200
    assert Task.objects.get(pk=task.pk).done == 0
    assert client.post(f"/api/projects/{project.pk}/next/").json()["id"] == task.pk


def test_undo_of_a_gold_answer_forgets_it_unless_training_mode_showed_the_answer():
    project = ProjectFactory(overlap=1, gold_rate=1.0)
    gold = gold_comparison_task(project=project)
    comparison_task(project=project)  # gold is served in place of a real task
    alice = member(project, username="alice")
    client = api_client_for(alice)
    served = client.post(f"/api/projects/{project.pk}/next/").json()
    assert served["id"] == gold.pk
    right = [[r] for r in gold.gold["ranking"][0]] + [gold.gold["ranking"][1]]
    stored = client.post(f"/api/tasks/{gold.pk}/annotations/", {"client_id": str(uuid.uuid4()), "ranking": right,
                         "strength": "better"}, format="json").json()
    record = GoldRecord.objects.get(project=project, labeler=alice)
    assert (record.gold_answered, record.gold_correct) == (1, 1)

    assert client.post(f"/api/annotations/{stored['id']}/undo/").status_code == 200
    record.refresh_from_db()
    assert (record.gold_answered, record.gold_correct) == (0, 0)

    project.gold_training_mode = True
    project.save(update_fields=["gold_training_mode"])
    stored = client.post(f"/api/tasks/{gold.pk}/annotations/", {"client_id": str(uuid.uuid4()), "ranking": right,
                         "strength": "better"}, format="json").json()
    refused = client.post(f"/api/annotations/{stored['id']}/undo/")
    assert refused.status_code == 409 and "expected answer" in refused.json()["detail"]


def test_my_work_lists_only_ones_own_work_with_filters_search_and_comments(pair_project):
    project, tasks, alice = pair_project
    TaskFactory(project=project, prompt__messages=[{"role": "user", "content": "Explain photosynthesis."}])
    bob = member(project, username="bob")
    client = api_client_for(alice)
    t = client.post(f"/api/projects/{project.pk}/next/?kind=demonstration").json()
    client.post(f"/api/tasks/{t['id']}/annotations/", {"client_id": str(uuid.uuid4()),
                "text": "Plants make sugar from light."}, format="json")
    c = client.post(f"/api/projects/{project.pk}/next/?kind=comparison").json()
    pair = client.post(f"/api/tasks/{c['id']}/annotations/", {"client_id": str(uuid.uuid4()),
                       "ranking": ranking_of(c, (1, 0)), "strength": "slightly_better"}, format="json").json()
    b = api_client_for(bob).post(f"/api/projects/{project.pk}/next/?kind=comparison").json()
    api_client_for(bob).post(f"/api/tasks/{b['id']}/annotations/", {"client_id": str(uuid.uuid4()),
                             "ranking": ranking_of(b), "strength": "better"}, format="json")
    reviewer = member(project, Membership.Role.REVIEWER, username="rita")
    ReviewItem.objects.create(project=project, annotation_id=pair["id"], task_id=c["id"], labeler=alice,
                              reason="sample", status=ReviewItem.Status.DECIDED, verdict="rejected",
                              comment="Response 1 answers the question.", reviewer=reviewer,
                              decided_at=timezone.now())
    Annotation.objects.filter(pk=pair["id"]).update(review_state="rejected")

    everything = client.get(f"/api/projects/{project.pk}/my-work/").json()
    assert [row["kind"] for row in everything["results"]] == ["comparison", "demonstration"]
    rejected = everything["results"][0]
    assert rejected["answer"] == "Response 2 > Response 1 (slightly better)"
    assert (rejected["review"], rejected["comment"]) == ("rejected", "Response 1 answers the question.")
    assert client.get(f"/api/projects/{project.pk}/my-work/?review=rejected").json()["count"] == 1
    assert client.get(f"/api/projects/{project.pk}/my-work/?kind=demonstration").json()["count"] == 1
    found = client.get(f"/api/projects/{project.pk}/my-work/?q=PHOTOSYNTHESIS").json()
    assert [row["kind"] for row in found["results"]] == ["demonstration"]
    assert client.get(f"/api/projects/{project.pk}/my-work/?q=sugar").json()["count"] == 1
    bad = client.get(f"/api/projects/{project.pk}/my-work/?review=maybe")
    assert bad.status_code == 400 and bad.json()["field"] == "review"
    outsider = member(ProjectFactory(), username="eve")
    assert api_client_for(outsider).get(f"/api/projects/{project.pk}/my-work/").status_code == 404
    # The rejected one was reviewed: nothing to undo.
    assert everything["undo"] is None
