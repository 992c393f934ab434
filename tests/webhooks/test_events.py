"""Where each event is emitted, what it carries, and what emitting costs a project without webhooks.

The broker is the edge here: `job_enqueue` is replaced by a recorder, so each test sees exactly which
messages would be sent after commit. The worker tests (test_delivery_worker.py) send them for real.
"""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation import services as annotation_services
from annotation.errors import InvalidInput
from annotation.models import Membership, Task
from tests.factories import ProjectFactory, TaskFactory, member, model_version
from tests.training.test_evaluation import evaluation_with_tasks
from training import registry, run_worker
from training.models import TrainingRun
from webhooks import events, project_events
from webhooks.models import WebhookEndpoint
from webhooks.services import endpoint_create, endpoint_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The Celery messages sent after commit, as (task name, args)."""
    messages = []

    def record(*, task_name, args, **options):
        messages.append((task_name, args))

    for module in ("webhooks.events", "webhooks.annotation_hooks", "loop.evaluation_completed"):
        monkeypatch.setattr(f"{module}.job_enqueue", record)
    return messages


def subscribe(project, *event_types) -> WebhookEndpoint:
    WebhookEndpoint.objects.filter(project=project).delete()  # the factory skips the URL check: no DNS
    endpoint = WebhookEndpoint.objects.create(project=project, url="https://hooks.example.org/in",
                                              events=list(event_types), secret="whsec_" + "A" * 43)
    events.subscriptions_changed(project_id=project.pk)
    return endpoint


def fanned(messages, event_type=None) -> list[dict]:
    return [args[0] for name, args in messages
            if name == "webhooks.event_fanout" and (event_type is None or args[0]["type"] == event_type)]


def submit(project, labeler, **data):
    task = annotation_services.task_claim_next(project=project, labeler=labeler)
    annotation, _ = annotation_services.annotation_submit(
        task=task, labeler=labeler, client_id=str(uuid.uuid4()), data=data or {"text": "An answer."}
    )
    return task, annotation


def test_a_project_without_webhooks_pays_no_query_and_sends_nothing(sent, django_capture_on_commit_callbacks):
    project = ProjectFactory()
    TaskFactory(project=project)
    labeler = member(project)
    events.subscribed_events(project_id=project.pk)  # the first read fills the cache
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        submit(project, labeler)
    assert not [q["sql"] for q in queries.captured_queries if "webhook" in q["sql"]]
    assert sent == []


def test_a_label_sends_annotation_created_and_task_completed_after_commit(sent, django_capture_on_commit_callbacks):
    project = ProjectFactory(overlap=1)
    TaskFactory(project=project)
    TaskFactory(project=project)
    subscribe(project, "annotation.created", "task.completed", "project.completed")
    labeler = member(project)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        task, annotation = submit(project, labeler)
    assert sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    [created] = fanned(sent, "annotation.created")
    [completed] = fanned(sent, "task.completed")
    assert created["data"]["id"] == annotation.pk and created["data"]["kind"] == "demonstration"
    assert completed["data"] == {**completed["data"], "id": task.pk, "status": "done", "done": 1, "required": 1}
    assert created["id"].startswith("msg_") and created["id"] != completed["id"]
    assert ("webhooks.project_completion_check", [project.pk]) in sent

    # One task is still open: the check finds the project unfinished.
    assert project_events.project_completed_emit(project_id=project.pk) is False
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        submit(project, labeler)
        assert project_events.project_completed_emit(project_id=project.pk) is True
        assert project_events.project_completed_emit(project_id=project.pk) is True  # noticed twice...
    first, second = fanned(sent, "project.completed")
    assert first["id"] == second["id"]  # ...it is one event, so each endpoint gets one delivery
    assert first["data"] == {"id": project.pk, "name": project.name, "slug": project.slug, "tasks": 2}


def test_only_subscribed_and_active_endpoints_count(sent, django_capture_on_commit_callbacks):
    project = ProjectFactory(overlap=2)
    TaskFactory(project=project)
    endpoint = subscribe(project, "run.failed")
    with django_capture_on_commit_callbacks(execute=True):
        submit(project, member(project))
    assert sent == []  # subscribed to another event; the task is not complete either
    endpoint_update(endpoint=endpoint, events=["annotation.created"])
    with django_capture_on_commit_callbacks(execute=True):
        submit(project, member(project))
    assert len(fanned(sent, "annotation.created")) == 1
    endpoint_update(endpoint=endpoint, active=False)
    assert events.subscribed_events(project_id=project.pk) == frozenset()


def test_training_emits_run_failed_run_succeeded_and_model_registered(sent, django_capture_on_commit_callbacks,
                                                                      settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path
    project = ProjectFactory()
    admin = member(project, Membership.Role.ADMIN)
    subscribe(project, "run.succeeded", "run.failed", "model.registered")
    base = model_version(name="base-x", kind="base", path="models/base-x")
    failing = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="running")
    with django_capture_on_commit_callbacks(execute=True):
        run_worker.run_finish(run=failing, status=TrainingRun.Status.FAILED, error="CUDA out of memory")
        run_worker.run_finish(run=failing, status=TrainingRun.Status.FAILED, error="again")  # no-op finish
    [failed, repeated] = fanned(sent, "run.failed")
    assert failed["id"] == repeated["id"]  # the same event, delivered once per endpoint
    assert failed["data"]["id"] == failing.pk and failed["data"]["error"] == "CUDA out of memory"

    running = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="running",
                                         checkpoint_dir=f"runs/{uuid.uuid4().hex}")
    with django_capture_on_commit_callbacks(execute=True):
        model = run_worker.run_succeed(run=running, metrics={"loss": 1.5})
    [succeeded] = fanned(sent, "run.succeeded")
    [registered] = fanned(sent, "model.registered")
    assert succeeded["data"]["id"] == running.pk and succeeded["data"]["status"] == "succeeded"
    assert registered["data"]["id"] == model.pk and registered["data"]["run_id"] == running.pk

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        registry.model_register(name="from-hub", kind="sft", path="org/some-model", project=project,
                                registered_by=admin)
        registry.model_register(name="global", kind="base", path="org/base", project=None, registered_by=None)
    assert [e["data"]["name"] for e in fanned(sent, "model.registered")] == ["from-hub"]


def test_generation_and_the_last_label_of_an_evaluation_emit_their_events(sent, django_capture_on_commit_callbacks,
                                                                          monkeypatch):
    from loop import evaluation_completed

    monkeypatch.setattr("loop.tasks.generation_execute.apply_async", lambda *a, **k: None)
    project = ProjectFactory(overlap=1)
    admin = member(project, Membership.Role.ADMIN)
    subscribe(project, "generation.completed", "evaluation.completed")
    a = model_version(name="sft-1", kind="sft", path="models/a")
    b = model_version(name="rlhf-1", kind="policy", path="models/b")
    with django_capture_on_commit_callbacks(execute=True):
        evaluation = evaluation_with_tasks(project=project, admin=admin, model_a=a, model_b=b, n=2)
    [generated] = fanned(sent, "generation.completed")
    assert generated["data"]["evaluation_id"] == evaluation.pk and generated["data"]["tasks_created"] == 2

    labeler = member(project)
    assert Task.objects.filter(metadata__evaluation=evaluation.pk).count() == 2
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            task = annotation_services.task_claim_next(project=project, labeler=labeler, kind="comparison")
            shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
            annotation_services.annotation_submit(task=task, labeler=labeler, client_id=str(uuid.uuid4()),
                                                  data={"ranking": [[shown[0]], [shown[1]]], "strength": "better"})
    checks = [args[0] for name, args in sent if name == "loop.evaluation_completion_check"]
    assert checks == [evaluation.pk, evaluation.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluation_completed.evaluation_completed_emit(evaluation_id=evaluation.pk) is True
    [completed] = fanned(sent, "evaluation.completed")
    assert completed["data"]["id"] == evaluation.pk and completed["data"]["status"] == "complete"
    assert completed["data"]["wins"] + completed["data"]["losses"] + completed["data"]["ties"] == 2


def test_a_refused_endpoint_subscribes_the_project_to_nothing(sent):
    project = ProjectFactory()
    with pytest.raises(InvalidInput):
        endpoint_create(project=project, url="http://10.0.0.1/", events=["task.completed"])
    assert events.subscribed_events(project_id=project.pk) == frozenset()
    assert not WebhookEndpoint.objects.exists()
