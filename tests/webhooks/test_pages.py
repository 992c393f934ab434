"""The project's webhook pages: admins only, the secret shown once, the delivery log and redelivery."""

import pytest
from django.test import override_settings
from django.urls import reverse

from annotation.models import Membership
from tests.factories import ProjectFactory, member
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN, username="ada")


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(client, project, admin):
    client.force_login(admin)
    page = client.get(reverse("project-webhooks", args=[project.pk]))
    assert page.status_code == 200 and b"No endpoints yet." in page.content
    assert b'aria-current="page">Webhooks<' in page.content
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True):
        answer = client.post(reverse("project-webhooks", args=[project.pk]),
                             {"url": URL, "events": ["annotation.created", "run.failed"], "active": "on"})
    endpoint = WebhookEndpoint.objects.get()
    assert answer.status_code == 302 and answer.url == reverse("project-webhook", args=[project.pk, endpoint.pk])
    assert endpoint.events == ["annotation.created", "run.failed"] and endpoint.active
    first = client.get(answer.url).content.decode()
    assert f'<code id="secret-value">{endpoint.secret}</code>' in first
    again = client.get(answer.url).content.decode()
    assert endpoint.secret not in again and 'id="new-secret"' not in again

    rotated = client.post(reverse("project-webhook-rotate", args=[project.pk, endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.secret in client.get(rotated.url).content.decode()


def test_a_bad_url_or_event_is_named_on_the_form_and_nothing_is_stored(client, project, admin):
    client.force_login(admin)
    page = client.post(reverse("project-webhooks", args=[project.pk]),
                       {"url": "ftp://hooks.example.org/", "events": ["annotation.created"]})
    assert page.status_code == 400 and b'data-field="url"' in page.content
    page = client.post(reverse("project-webhooks", args=[project.pk]),
                       {"url": "http://169.254.169.254/latest/", "events": ["annotation.created"]})
    assert page.status_code == 400 and b"link-local" in page.content
    page = client.post(reverse("project-webhooks", args=[project.pk]), {"url": URL, "events": ["nope"]})
    assert page.status_code == 400 and b'data-field="events"' in page.content
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_shows_status_and_response_time_and_redelivers(
    client, project, admin, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("webhooks.services.job_enqueue", lambda *, task_name, args: sent.append((task_name, args)))
    endpoint = WebhookEndpoint.objects.create(project=project, url=URL, events=["run.failed"], secret="whsec_x")
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, project=project, event_id="msg_page", event_type="run.failed",
        payload={"type": "run.failed"}, status="failed", attempts=1, last_status_code=410, last_response_ms=37,
    )
    WebhookAttempt.objects.create(delivery=delivery, attempt=1, status_code=410, response_ms=37,
                                  started_at=delivery.created_at, finished_at=delivery.created_at)
    client.force_login(admin)
    html = client.get(reverse("project-webhook", args=[project.pk, endpoint.pk])).content.decode()
    assert f'data-delivery="{delivery.pk}" data-status="failed"' in html
    assert "37 ms" in html and ">410<" in html and 'data-attempt="1"' in html
    assert endpoint.secret not in html
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(reverse("project-webhook-redeliver", args=[project.pk, delivery.pk]))
    assert answer.status_code == 302 and sent == [("webhooks.deliver", [delivery.pk])]
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts_allowed > delivery.attempts


@pytest.mark.parametrize("role", [Membership.Role.LABELER, Membership.Role.ENGINEER])
def test_other_roles_get_403_and_other_projects_admins_404(client, project, admin, role):
    endpoint = WebhookEndpoint.objects.create(project=project, url=URL, events=["run.failed"], secret="whsec_x")
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, project=project, event_id="m", event_type="run.failed",
                                              payload={}, status="failed")
    pages = [
        ("get", reverse("project-webhooks", args=[project.pk])),
        ("post", reverse("project-webhooks", args=[project.pk])),
        ("get", reverse("project-webhook", args=[project.pk, endpoint.pk])),
        ("post", reverse("project-webhook-rotate", args=[project.pk, endpoint.pk])),
        ("post", reverse("project-webhook-delete", args=[project.pk, endpoint.pk])),
        ("post", reverse("project-webhook-redeliver", args=[project.pk, delivery.pk])),
    ]
    client.force_login(member(project, role))
    assert [getattr(client, method)(url).status_code for method, url in pages] == [403] * len(pages)
    client.force_login(member(ProjectFactory(), Membership.Role.ADMIN))
    assert [getattr(client, method)(url).status_code for method, url in pages] == [404] * len(pages)
    endpoint.refresh_from_db()
    assert endpoint.secret == "whsec_x" and WebhookDelivery.objects.get().status == "failed"
