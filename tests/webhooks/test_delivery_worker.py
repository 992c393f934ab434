"""Through a real Celery worker and a real HTTP receiver: signed deliveries, retries, and never twice.

The worker allows loopback receivers (tests/conftest.py sets FEEDBACKLOOP_WEBHOOKS_ALLOW_PRIVATE_NETWORKS
for it); this process saves the endpoint with the same setting turned on explicitly. Backoff is 0.2 s
(config/settings/test.py).
"""

import re
import uuid

import pytest
from django.test import override_settings

from annotation import services as annotation_services
from annotation.models import Membership
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, TaskFactory, member
from webhooks.models import WebhookDelivery
from webhooks.tasks import event_fanout, webhook_deliver

from .receiver import Receiver, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def endpoint_for(project, url: str, events: list[str]) -> dict:
    admin = member(project, Membership.Role.ADMIN)
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True):
        answer = api_client_for(admin).post(
            f"/api/projects/{project.pk}/webhooks/", {"url": url, "events": events}, format="json"
        )
    assert answer.status_code == 201, answer.content
    return answer.json()


def label(project, labeler, text: str = "A careful answer."):
    task = annotation_services.task_claim_next(project=project, labeler=labeler)
    annotation, created = annotation_services.annotation_submit(
        task=task, labeler=labeler, client_id=str(uuid.uuid4()), data={"text": text}
    )
    assert created
    return task, annotation


def settled(project_id: int, count: int):
    deliveries = list(WebhookDelivery.objects.filter(project_id=project_id).order_by("id"))
    done = len(deliveries) == count and all(d.status != WebhookDelivery.Status.PENDING for d in deliveries)
    return deliveries if done else None


def processed(worker, task_id: str) -> bool:
    return re.search(rf"\[{task_id}\] succeeded", worker.log_path.read_text()) is not None


def test_a_500_is_retried_then_delivered_once_signed_and_never_again(celery_worker_process, receiver):
    project = ProjectFactory(overlap=1)
    TaskFactory(project=project)
    TaskFactory(project=project)
    endpoint = endpoint_for(project, receiver.url, ["annotation.created", "task.completed"])
    labeler = member(project, username="lena")
    receiver.script = [500]  # the first request fails, the rest succeed

    task, annotation = label(project, labeler)
    deliveries = wait_for(lambda: settled(project.pk, 2), what="two settled deliveries",
                          log=celery_worker_process.log_path)

    assert [d.status for d in deliveries] == ["succeeded", "succeeded"]
    by_type = {d.event_type: d for d in deliveries}
    created = by_type["annotation.created"]
    log = list(created.attempt_log.values_list("attempt", "status_code", "error"))
    retried = created if [row[1] for row in log] == [500, 200] else by_type["task.completed"]
    attempts = list(retried.attempt_log.order_by("attempt"))
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
    assert all(a.response_ms is not None and a.finished_at >= a.started_at for a in attempts)
    assert retried.attempts == 2 and retried.last_status_code == 200 and retried.delivered_at is not None
    assert len(receiver.received) == 3

    # Every request carries the three headers, and the library verifies each signature.
    bodies = receiver.verified(endpoint["secret"])
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids.count(retried.event_id) == 2  # the retry is the same message: the same webhook-id
    assert {body["type"] for body in bodies} == {"annotation.created", "task.completed"}
    sent = next(body for body in bodies if body["type"] == "annotation.created")
    assert set(sent) == {"type", "timestamp", "data"}
    assert sent["data"]["id"] == annotation.pk and sent["data"]["task_id"] == task.pk
    assert sent["data"]["text"] == "A careful answer." and sent["data"]["labeler_id"] == labeler.pk
    assert "password" not in created.payload["data"] and endpoint["secret"] not in str(bodies)

    # The task message delivered again, and the event fanned out again: nothing is sent twice.
    attempts_before = {d.pk: d.attempts for d in deliveries}
    again = webhook_deliver.delay(created.pk)
    fanned = event_fanout.delay({"id": created.event_id, "type": "annotation.created", "project_id": project.pk,
                                 "timestamp": sent["timestamp"], "data": sent["data"]})
    wait_for(lambda: processed(celery_worker_process, again.id) and processed(celery_worker_process, fanned.id),
             what="the repeated messages", log=celery_worker_process.log_path)
    assert len(receiver.received) == 3
    assert WebhookDelivery.objects.filter(project_id=project.pk).count() == 2
    assert {d.pk: d.attempts for d in WebhookDelivery.objects.filter(project_id=project.pk)} == attempts_before
    assert WebhookDelivery.objects.get(pk=created.pk).attempt_log.count() == created.attempts


def test_a_4xx_fails_at_once_and_an_admin_redelivers_it(celery_worker_process, receiver):
    project = ProjectFactory(overlap=1)
    TaskFactory(project=project)
    endpoint = endpoint_for(project, receiver.url, ["annotation.created"])
    receiver.script = [404]
    label(project, member(project))
    [delivery] = wait_for(lambda: settled(project.pk, 1), what="a settled delivery", log=celery_worker_process.log_path)
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.last_status_code == 404

    admin = Membership.objects.get(project=project, role=Membership.Role.ADMIN).user
    api = api_client_for(admin)
    answer = api.post(f"/api/projects/{project.pk}/webhook-deliveries/{delivery.pk}/redeliver/")
    assert answer.status_code == 202, answer.content
    wait_for(lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="succeeded").exists(),
             what="the redelivery", log=celery_worker_process.log_path)
    detail = api.get(f"/api/projects/{project.pk}/webhook-deliveries/{delivery.pk}/").json()
    assert [(a["attempt"], a["status_code"]) for a in detail["attempt_log"]] == [(1, 404), (2, 200)]
    assert len(receiver.verified(endpoint["secret"])) == 2
    # A succeeded delivery is never sent again.
    assert api.post(f"/api/projects/{project.pk}/webhook-deliveries/{delivery.pk}/redeliver/").status_code == 409


def test_the_last_label_completes_the_project_once_through_the_worker(celery_worker_process, receiver):
    project = ProjectFactory(overlap=1)
    TaskFactory(project=project)
    endpoint = endpoint_for(project, receiver.url, ["task.completed", "project.completed"])
    label(project, member(project))
    deliveries = wait_for(lambda: settled(project.pk, 2), what="two settled deliveries",
                          log=celery_worker_process.log_path)
    assert sorted(d.event_type for d in deliveries) == ["project.completed", "task.completed"]
    assert all(d.status == "succeeded" and d.attempts == 1 for d in deliveries)
    completed = next(body for body in receiver.verified(endpoint["secret"]) if body["type"] == "project.completed")
    assert completed["data"] == {"id": project.pk, "name": project.name, "slug": project.slug, "tasks": 1}
