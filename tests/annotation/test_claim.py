"""The next task, leases, submit and skip (docs/architecture.md, "A label's path")."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Annotation, Lease, Response, Task
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

pytestmark = pytest.mark.django_db


def next_task(client, project, kind=None):
    url = f"/api/projects/{project.pk}/next/" + (f"?kind={kind}" if kind else "")
    return client.post(url)


def submit(client, task_id, **body):
    body.setdefault("client_id", str(uuid.uuid4()))
    return client.post(f"/api/tasks/{task_id}/annotations/", body, format="json")


def test_next_returns_highest_priority_then_oldest(client_for):
    project = ProjectFactory()
    labeler = member(project)
    old = TaskFactory(project=project)
    TaskFactory(project=project)
    urgent = TaskFactory(project=project, priority=5)
    client = client_for(labeler)
    assert next_task(client, project).json()["id"] == urgent.pk
    submit(client, urgent.pk, text="Done.")
    assert next_task(client, project).json()["id"] == old.pk


def test_reload_returns_the_same_task(client_for):
    project = ProjectFactory()
    labeler = member(project)
    TaskFactory.create_batch(3, project=project)
    client = client_for(labeler)
    first = next_task(client, project).json()
    again = next_task(client, project).json()
    assert first["id"] == again["id"]
    assert Lease.objects.filter(labeler=labeler).count() == 1
    # Both answers show the stored lease: the new one, then the held one (read by the claim).
    stored = Lease.objects.get(labeler=labeler).expires_at.isoformat()
    assert first["lease_expires_at"] == again["lease_expires_at"] == stored
    assert client.get(f"/api/tasks/{first['id']}/").json()["lease_expires_at"] == stored


def test_a_leased_task_is_not_handed_to_another_labeler_beyond_overlap(client_for):
    project = ProjectFactory(overlap=1)
    a, b = member(project), member(project)
    TaskFactory(project=project)
    assert next_task(client_for(a), project).status_code == 200
    assert next_task(client_for(b), project).status_code == 204


def test_overlap_two_gives_the_task_to_two_labelers(client_for):
    project = ProjectFactory(overlap=2)
    a, b, c = member(project), member(project), member(project)
    task = TaskFactory(project=project)
    assert next_task(client_for(a), project).json()["id"] == task.pk
    assert next_task(client_for(b), project).json()["id"] == task.pk
    assert next_task(client_for(c), project).status_code == 204


def test_an_expired_lease_frees_the_task_for_others(client_for):
    project = ProjectFactory(overlap=1)
    a, b = member(project), member(project)
    task = TaskFactory(project=project)
    assert next_task(client_for(a), project).json()["id"] == task.pk
    Lease.objects.filter(labeler=a).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert next_task(client_for(b), project).json()["id"] == task.pk


def test_a_submit_after_expiry_is_kept(client_for):
    project = ProjectFactory(overlap=1)
    a, b = member(project), member(project)
    task = TaskFactory(project=project)
    next_task(client_for(a), project)
    Lease.objects.filter(labeler=a).update(expires_at=timezone.now() - timedelta(seconds=1))
    next_task(client_for(b), project)  # b takes the freed task
    late = submit(client_for(a), task.pk, text="Late but kept.")
    assert late.status_code == 201
    assert late.json()["lease_expired"] is True
    on_time = submit(client_for(b), task.pk, text="On time.")
    assert on_time.status_code == 201
    task.refresh_from_db()
    assert task.done == 2 == Annotation.objects.filter(task=task).count()
    assert task.status == Task.Status.DONE


def test_submit_is_idempotent_on_client_id(client_for):
    project = ProjectFactory()
    labeler = member(project)
    task = TaskFactory(project=project)
    client = client_for(labeler)
    next_task(client, project)
    client_id = str(uuid.uuid4())
    first = submit(client, task.pk, client_id=client_id, text="Once.")
    second = submit(client, task.pk, client_id=client_id, text="Once.")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Annotation.objects.count() == 1
    task.refresh_from_db()
    assert task.done == 1


def test_a_client_id_cannot_be_reused_by_someone_else(client_for):
    project = ProjectFactory(overlap=2)
    a, b = member(project), member(project)
    task = TaskFactory(project=project)
    next_task(client_for(a), project)
    next_task(client_for(b), project)
    client_id = str(uuid.uuid4())
    assert submit(client_for(a), task.pk, client_id=client_id, text="Mine.").status_code == 201
    stolen = submit(client_for(b), task.pk, client_id=client_id, text="Mine too.")
    assert stolen.status_code == 409
    assert stolen.json()["field"] == "client_id"


def test_submit_without_a_lease_is_refused(client_for):
    project = ProjectFactory()
    labeler = member(project)
    task = TaskFactory(project=project)
    response = submit(client_for(labeler), task.pk, text="Sneaky.")
    assert response.status_code == 409
    assert Annotation.objects.count() == 0


def test_submit_validates_fields_and_changes_nothing(client_for):
    project = ProjectFactory()
    labeler = member(project)
    task = TaskFactory(project=project)
    client = client_for(labeler)
    next_task(client, project)
    empty = submit(client, task.pk, text="   ")
    assert empty.status_code == 400 and empty.json()["field"] == "text"
    bad_id = submit(client, task.pk, client_id="not-a-uuid", text="x")
    assert bad_id.status_code == 400 and bad_id.json()["field"] == "client_id"
    assert Annotation.objects.count() == 0
    assert Lease.objects.filter(labeler=labeler).exists()


def test_a_demonstration_also_becomes_a_human_response(client_for):
    project = ProjectFactory()
    labeler = member(project)
    task = TaskFactory(project=project)
    client = client_for(labeler)
    next_task(client, project)
    submit(client, task.pk, text="Paris is the capital of France.")
    response = Response.objects.get(source=Response.Source.HUMAN)
    assert response.author == labeler and response.prompt == task.prompt
    assert response.text == "Paris is the capital of France."


def test_comparison_pair_needs_a_strength_unless_tied(client_for):
    project = ProjectFactory()
    labeler = member(project)
    task = comparison_task(project=project)
    a, b = task.task_responses.values_list("response_id", flat=True)
    client = client_for(labeler)
    body = next_task(client, project).json()
    assert [r["id"] for r in body["responses"]] == [a, b]
    no_strength = submit(client, task.pk, ranking=[[a], [b]])
    assert no_strength.status_code == 400 and no_strength.json()["field"] == "strength"
    wrong_ids = submit(client, task.pk, ranking=[[a], [a]], strength="better")
    assert wrong_ids.status_code == 400 and wrong_ids.json()["field"] == "ranking"
    tie = submit(client, task.pk, ranking=[[a, b]], flags={str(a): ["factual_error"]}, rationale="Both fine.")
    assert tie.status_code == 201
    stored = Annotation.objects.get()
    assert stored.strength == "tie" and stored.ranking == [[a, b]] and stored.flags == {str(a): ["factual_error"]}


def test_all_bad_needs_no_ranking(client_for):
    project = ProjectFactory()
    labeler = member(project)
    task = comparison_task(project=project, texts=("x", "y", "z"))
    client = client_for(labeler)
    next_task(client, project)
    assert submit(client, task.pk, all_bad=True).status_code == 201


def test_a_labeler_never_judges_a_response_they_wrote(client_for):
    project = ProjectFactory(overlap=1)
    author, other = member(project), member(project)
    comparison_task(project=project, authors=[author, None])
    assert next_task(client_for(author), project).status_code == 204
    assert next_task(client_for(other), project).status_code == 200


def test_skip_takes_a_reason_and_frees_the_task(client_for):
    project = ProjectFactory(overlap=1)
    a, b = member(project), member(project)
    task = TaskFactory(project=project)
    client = client_for(a)
    next_task(client, project)
    no_reason = client.post(f"/api/tasks/{task.pk}/skip/", {"reason": ""}, format="json")
    assert no_reason.status_code == 400 and no_reason.json()["field"] == "reason"
    skipped = client.post(f"/api/tasks/{task.pk}/skip/", {"reason": "Not my language"}, format="json")
    assert skipped.status_code == 201
    task.refresh_from_db()
    assert task.done == 0 and task.status == Task.Status.OPEN
    assert next_task(client, project).status_code == 204  # a skip is never handed back
    assert next_task(client_for(b), project).json()["id"] == task.pk


def test_kind_filter(client_for):
    project = ProjectFactory()
    labeler = member(project)
    TaskFactory(project=project)
    comparison = comparison_task(project=project)
    client = client_for(labeler)
    assert next_task(client, project, kind="comparison").json()["id"] == comparison.pk
    assert next_task(client, project, kind="bogus").status_code == 400


def test_heartbeat_extends_the_lease(client_for):
    project = ProjectFactory(lease_seconds=60)
    labeler = member(project)
    task = TaskFactory(project=project)
    client = client_for(labeler)
    next_task(client, project)
    Lease.objects.filter(labeler=labeler).update(expires_at=timezone.now() + timedelta(seconds=5))
    beat = client.post(f"/api/tasks/{task.pk}/heartbeat/")
    assert beat.status_code == 200
    assert Lease.objects.get(labeler=labeler).expires_at > timezone.now() + timedelta(seconds=50)


def test_heartbeat_after_expiry_when_the_task_was_taken(client_for):
    project = ProjectFactory(overlap=1)
    a, b = member(project), member(project)
    task = TaskFactory(project=project)
    next_task(client_for(a), project)
    Lease.objects.filter(labeler=a).update(expires_at=timezone.now() - timedelta(seconds=1))
    next_task(client_for(b), project)
    assert client_for(a).post(f"/api/tasks/{task.pk}/heartbeat/").status_code == 409


def test_lowering_overlap_closes_tasks_that_have_enough(client_for):
    project = ProjectFactory(overlap=2)
    admin = member(project, role="admin")
    labeler = member(project)
    task = TaskFactory(project=project)
    client = client_for(labeler)
    next_task(client, project)
    submit(client, task.pk, text="One.")
    changed = client_for(admin).patch(f"/api/projects/{project.pk}/", {"overlap": 1}, format="json")
    assert changed.status_code == 200
    task.refresh_from_db()
    assert (task.required, task.status) == (1, Task.Status.DONE)


def test_a_submit_and_its_replay_answer_with_the_annotation_as_its_serializer_writes_it(client_for):
    from annotation.api.serializers import AnnotationSerializer

    project = ProjectFactory()
    labeler = member(project)
    TaskFactory(project=project)
    client = client_for(labeler)
    task_id = next_task(client, project).json()["id"]
    client_id = str(uuid.uuid4())
    created = submit(client, task_id, client_id=client_id, text="An answer.", time_spent_ms=1500)
    replay = submit(client, task_id, client_id=client_id, text="An answer.", time_spent_ms=1500)
    assert (created.status_code, replay.status_code) == (201, 200)
    expected = dict(AnnotationSerializer(Annotation.objects.get(client_id=client_id)).data)
    assert created.json() == replay.json() == expected
    assert expected["text"] == "An answer." and expected["time_spent_ms"] == 1500 and expected["task"] == task_id
