"""Rotating an endpoint's secret with a grace period: both secrets sign until it ends, then the new one alone.

Each delivery goes to a loopback receiver in the test process, and each receiver check is the
Standard Webhooks library's own `verify`, with the secret that receiver holds.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from annotation.models import Membership
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, member
from webhooks import delivery, services, signing
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOKS_ROTATION_GRACE_HOURS = 24


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN, username="ada")


def endpoint_for(project, url) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(project=project, url=url, events=["run.failed"], secret=signing.secret_new())


def deliver(endpoint: WebhookEndpoint, event_id: str):
    """One attempt of a new delivery; the request the receiver got."""
    pending = WebhookDelivery.objects.create(endpoint=endpoint, project=endpoint.project, event_id=event_id,
                                             event_type="run.failed", payload={"type": "run.failed", "data": {}})
    assert delivery.delivery_attempt(delivery_id=pending.pk).status == "succeeded"
    return pending


def verifies(secret: str, request) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


def test_during_the_grace_a_receiver_holding_either_secret_verifies_and_after_it_only_the_new_one(
    receiver, project, admin
):
    endpoint = endpoint_for(project, receiver.url)
    old = endpoint.secret
    api = api_client_for(admin)
    before = timezone.now()
    rotated = api.post(f"/api/projects/{project.pk}/webhooks/{endpoint.pk}/rotate-secret/").json()
    new = rotated["secret"]
    until = WebhookEndpoint.objects.get().previous_secret_until
    assert new != old and before + timedelta(hours=24) <= until <= timezone.now() + timedelta(hours=24)
    assert rotated["previous_secret_valid_until"] == until.isoformat().replace("+00:00", "Z")

    deliver(endpoint, "msg_in_grace")
    in_grace = receiver.received[-1]
    assert len(in_grace.headers["webhook-signature"].split(" ")) == 2
    assert verifies(old, in_grace) and verifies(new, in_grace)

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_until=timezone.now() - timedelta(seconds=1))
    deliver(endpoint, "msg_after_grace")
    after = receiver.received[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verifies(new, after) and not verifies(old, after)
    detail = api.get(f"/api/projects/{project.pk}/webhooks/{endpoint.pk}/").json()
    assert detail["previous_secret_valid_until"] is None

    assert services.previous_secrets_erase_expired() == 1  # the beat's sweep: the old secret is not kept
    stored = WebhookEndpoint.objects.get()
    assert (stored.previous_secret, stored.previous_secret_until, stored.secret) == ("", None, new)


def test_with_no_grace_the_old_secret_stops_at_once(receiver, project, settings):
    settings.WEBHOOKS_ROTATION_GRACE_HOURS = 0
    endpoint = endpoint_for(project, receiver.url)
    old = endpoint.secret
    services.endpoint_secret_rotate(endpoint=endpoint)
    stored = WebhookEndpoint.objects.get()
    assert (stored.previous_secret, stored.previous_secret_until) == ("", None)
    deliver(stored, "msg_no_grace")
    assert verifies(stored.secret, receiver.received[-1]) and not verifies(old, receiver.received[-1])


def test_a_second_rotation_keeps_only_the_secret_it_replaced(receiver, project):
    endpoint = endpoint_for(project, receiver.url)
    first = endpoint.secret
    second = services.endpoint_secret_rotate(endpoint=endpoint).secret
    third = services.endpoint_secret_rotate(endpoint=endpoint).secret
    deliver(WebhookEndpoint.objects.get(), "msg_twice")
    request = receiver.received[-1]
    assert verifies(third, request) and verifies(second, request) and not verifies(first, request)


def test_ending_the_grace_early_through_the_api_and_the_page(receiver, project, admin, client):
    endpoint = endpoint_for(project, receiver.url)
    old = endpoint.secret
    services.endpoint_secret_rotate(endpoint=endpoint)
    api = api_client_for(admin)
    url = f"/api/projects/{project.pk}/webhooks/{endpoint.pk}/end-secret-grace/"
    ended = api.post(url)
    assert ended.status_code == 200 and ended.json()["previous_secret_valid_until"] is None
    assert WebhookEndpoint.objects.get().previous_secret == ""
    deliver(endpoint, "msg_ended")
    assert not verifies(old, receiver.received[-1])
    again = api.post(url)
    assert again.status_code == 409 and again.json()["field"] == "previous_secret_until"

    services.endpoint_secret_rotate(endpoint=WebhookEndpoint.objects.get())
    client.force_login(admin)
    page = client.get(reverse("project-webhook", args=[project.pk, endpoint.pk])).content.decode()
    stored = WebhookEndpoint.objects.get()
    assert 'id="previous-secret-grace"' in page and stored.previous_secret_until.isoformat()[:16] in page
    assert stored.previous_secret not in page  # the previous secret is never shown
    answer = client.post(reverse("project-webhook-end-grace", args=[project.pk, endpoint.pk]))
    assert answer.status_code == 302 and WebhookEndpoint.objects.get().previous_secret_until is None
    page = client.get(answer.url).content.decode()
    assert 'id="previous-secret-grace"' not in page and "signs nothing more" in page


def test_only_the_projects_admins_may_end_the_grace(project, admin):
    endpoint = endpoint_for(project, "http://127.0.0.1:9/hook")
    services.endpoint_secret_rotate(endpoint=endpoint)
    url = f"/api/projects/{project.pk}/webhooks/{endpoint.pk}/end-secret-grace/"
    engineer = member(project, Membership.Role.ENGINEER, username="erin")
    outsider = member(ProjectFactory(), Membership.Role.ADMIN, username="otto")
    assert api_client_for(engineer).post(url).status_code == 403
    assert api_client_for(outsider).post(url).status_code == 404
    assert WebhookEndpoint.objects.get().previous_secret != ""
