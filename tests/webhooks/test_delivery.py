"""One attempt, in the test process against a loopback receiver: what each answer means, and when an
attempt is not made at all. The private-network setting is turned on for these tests explicitly."""

import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ProjectFactory
from webhooks import delivery
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOKS_MAX_ATTEMPTS = 3
    settings.WEBHOOKS_BACKOFF_SECONDS = 2.0


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def pending_to(url: str, **fields) -> WebhookDelivery:
    endpoint = WebhookEndpoint.objects.create(project=ProjectFactory(), url=url, events=["run.failed"],
                                              secret="whsec_" + "B" * 43)
    return WebhookDelivery.objects.create(endpoint=endpoint, project=endpoint.project, event_id="msg_x",
                                          event_type="run.failed", attempts_allowed=3,
                                          payload={"type": "run.failed", "timestamp": "t", "data": {}}, **fields)


@pytest.mark.parametrize("code, status", [
    (200, "succeeded"), (204, "succeeded"), (500, "pending"), (503, "pending"), (408, "pending"), (429, "pending"),
    (400, "failed"), (401, "failed"), (404, "failed"), (410, "failed"), (301, "failed"),
])
def test_what_each_answer_means(receiver, code, status):
    receiver.then = code
    pending = pending_to(receiver.url)
    result = delivery.delivery_attempt(delivery_id=pending.pk)
    pending.refresh_from_db()
    assert (result.status, pending.status, pending.last_status_code) == (status, status, code)
    assert result.retry_in == (2.0 if status == "pending" else None)
    assert (pending.next_attempt_at is not None) == (status == "pending")
    assert (pending.delivered_at is not None) == (status == "succeeded")
    assert pending.attempt_log.get().status_code == code and len(receiver.received) == 1


def test_the_backoff_doubles_and_the_last_allowed_attempt_fails(receiver):
    receiver.then = 500
    pending = pending_to(receiver.url)
    waits = []
    for _ in range(3):
        WebhookDelivery.objects.filter(pk=pending.pk).update(next_attempt_at=None)  # due now
        waits.append(delivery.delivery_attempt(delivery_id=pending.pk).retry_in)
    pending.refresh_from_db()
    assert waits == [2.0, 4.0, None] and pending.status == "failed" and pending.attempts == 3
    assert list(pending.attempt_log.values_list("attempt", flat=True)) == [1, 2, 3]


def test_a_connection_error_and_a_timeout_are_tried_again(settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once the socket closes
    refused = pending_to(f"http://127.0.0.1:{port}/hook")
    result = delivery.delivery_attempt(delivery_id=refused.pk)
    attempt = refused.attempt_log.get()
    assert result.status == "pending" and attempt.status_code is None and "ConnectError" in attempt.error

    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.3
    slow = Receiver()
    original = slow.server.RequestHandlerClass.do_POST
    slow.server.RequestHandlerClass.do_POST = lambda handler: (time.sleep(1.0), original(handler))
    try:
        timed_out = pending_to(slow.url)
        result = delivery.delivery_attempt(delivery_id=timed_out.pk)
    finally:
        slow.close()
    attempt = timed_out.attempt_log.get()
    assert result.status == "pending" and attempt.error == "Timed out after 0.3 s." and attempt.response_ms >= 300


def test_no_attempt_before_it_is_due_while_another_worker_holds_it_or_after_success(receiver):
    later = pending_to(receiver.url, next_attempt_at=timezone.now() + timedelta(minutes=1))
    held = pending_to(receiver.url, locked_until=timezone.now() + timedelta(minutes=1))
    done = pending_to(receiver.url, status="succeeded")
    for pending in (later, held, done):
        assert delivery.delivery_attempt(delivery_id=pending.pk) == delivery.SKIPPED
        pending.refresh_from_db()
        assert pending.attempts == 0 and not pending.attempt_log.exists()
    assert receiver.received == []


def test_an_endpoint_disabled_after_the_event_gets_nothing(receiver):
    pending = pending_to(receiver.url)
    WebhookEndpoint.objects.filter(pk=pending.endpoint_id).update(active=False)
    assert delivery.delivery_attempt(delivery_id=pending.pk).status == "failed"
    assert receiver.received == [] and pending.attempt_log.get().error == "The endpoint is disabled."


def test_a_lost_message_is_found_by_the_sweep(receiver):
    overdue = pending_to(receiver.url, next_attempt_at=timezone.now() - timedelta(minutes=5))
    WebhookDelivery.objects.filter(pk=overdue.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    pending_to(receiver.url, next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert delivery.deliveries_overdue() == [overdue.pk]


def test_the_fan_out_makes_one_delivery_per_subscribed_endpoint_once():
    project = ProjectFactory()
    wanted = WebhookEndpoint.objects.create(project=project, url="https://a.example.org/", events=["run.failed"],
                                            secret="whsec_" + "C" * 43)
    WebhookEndpoint.objects.create(project=project, url="https://b.example.org/", events=["run.succeeded"],
                                   secret="whsec_" + "C" * 43)
    WebhookEndpoint.objects.create(project=project, url="https://c.example.org/", events=["run.failed"],
                                   active=False, secret="whsec_" + "C" * 43)
    event = {"id": "msg_once", "type": "run.failed", "project_id": project.pk, "timestamp": "t", "data": {"id": 1}}
    made = delivery.deliveries_create(event=event)
    assert delivery.deliveries_create(event=event) == []
    [only] = WebhookDelivery.objects.filter(project=project)
    assert made == [only.pk] and only.endpoint == wanted
    assert only.payload == {"type": "run.failed", "timestamp": "t", "data": {"id": 1}}
