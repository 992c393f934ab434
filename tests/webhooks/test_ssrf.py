"""The SSRF rules (webhooks/addresses.py): refused at save time and again at each attempt.

The test process keeps the default (WEBHOOKS_ALLOW_PRIVATE_NETWORKS off); tests that need a loopback
receiver turn it on explicitly. DNS answers are replaced only where a test needs a name to change
its address between the save and the attempt (there is no outside DNS here).
"""

import socket

import pytest
from django.test import override_settings

from annotation.errors import InvalidInput
from annotation.models import Membership
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, member
from webhooks import addresses, delivery, services
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .receiver import Receiver

pytestmark = pytest.mark.django_db

REFUSED_BY_DEFAULT = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://10.0.0.5/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://100.64.0.1/hook",
    "http://localhost/hook",
    "http://localhost:8000/api/projects/",
]


@pytest.mark.parametrize("url", REFUSED_BY_DEFAULT)
def test_loopback_internal_and_metadata_addresses_are_refused_by_default(url):
    with pytest.raises(InvalidInput) as refused:
        addresses.url_check(url)
    assert refused.value.field == "url" and "refused" in refused.value.message


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://0.0.0.0/",
                                 "http://224.0.0.1/", "http://240.0.0.1/"])
def test_allowing_private_networks_still_refuses_link_local_multicast_reserved_and_unspecified(url):
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True), pytest.raises(InvalidInput):
        addresses.url_check(url)


def test_allowing_private_networks_lets_loopback_and_private_addresses_through():
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True):
        assert addresses.url_check("http://127.0.0.1:9000/hook") == "http://127.0.0.1:9000/hook"
        assert addresses.url_check("http://10.1.2.3/hook") == "http://10.1.2.3/hook"


def test_a_public_address_passes_and_the_platforms_own_host_does_not(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.215.14", 443))])
    assert addresses.url_check("https://hooks.example.org/in") == "https://hooks.example.org/in"
    with override_settings(ALLOWED_HOSTS=["feedbackloop.example.org"]), pytest.raises(InvalidInput) as refused:
        addresses.url_check("https://feedbackloop.example.org/api/projects/")
    assert "own host" in refused.value.message
    with override_settings(ALLOWED_HOSTS=[".example.org"]), pytest.raises(InvalidInput):
        addresses.url_check("https://labels.example.org/")


def test_the_api_refuses_an_internal_url_at_save_and_stores_nothing():
    project = ProjectFactory()
    api = api_client_for(member(project, Membership.Role.ADMIN))
    for url in ["http://127.0.0.1:8000/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
                "http://localhost/", "http://10.0.0.1/"]:
        answer = api.post(f"/api/projects/{project.pk}/webhooks/", {"url": url, "events": ["task.completed"]},
                          format="json")
        assert answer.status_code == 400 and answer.json()["field"] == "url", (url, answer.content)
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_saved_while_loopback_was_allowed_is_refused_at_delivery_and_nothing_is_sent():
    receiver = Receiver()
    try:
        project = ProjectFactory()
        with override_settings(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True):
            endpoint = services.endpoint_create(project=project, url=receiver.url, events=["task.completed"])
        pending = WebhookDelivery.objects.create(endpoint=endpoint, project=project, event_id="msg_1",
                                                 event_type="task.completed", payload={"type": "task.completed"})
        result = delivery.delivery_attempt(delivery_id=pending.pk)  # the default: loopback refused
        assert result.status == "failed" and result.retry_in is None
        assert receiver.received == []
        [attempt] = pending.attempt_log.all()
        assert attempt.status_code is None and "loopback" in attempt.error
    finally:
        receiver.close()


def test_a_name_that_resolves_elsewhere_after_the_save_is_refused_at_delivery(monkeypatch):
    answers = {"now": "93.184.215.14"}
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", (answers["now"], 80))])
    project = ProjectFactory()
    endpoint = services.endpoint_create(project=project, url="http://hooks.example.org/in", events=["task.completed"])
    answers["now"] = "10.0.0.7"  # DNS rebinding: the name now points inside
    pending = WebhookDelivery.objects.create(endpoint=endpoint, project=project, event_id="msg_2",
                                             event_type="task.completed", payload={"type": "task.completed"})
    result = delivery.delivery_attempt(delivery_id=pending.pk)
    assert result.status == "failed"
    assert "10.0.0.7" in pending.attempt_log.get().error


def test_redirects_are_not_followed():
    receiver = Receiver(then=302)
    try:
        project = ProjectFactory()
        with override_settings(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True):
            endpoint = services.endpoint_create(project=project, url=receiver.url, events=["task.completed"])
            pending = WebhookDelivery.objects.create(endpoint=endpoint, project=project, event_id="msg_3",
                                                     event_type="task.completed", payload={"type": "task.completed"})
            result = delivery.delivery_attempt(delivery_id=pending.pk)
        assert result.status == "failed" and len(receiver.received) == 1
        assert pending.attempt_log.get().status_code == 302
    finally:
        receiver.close()
