"""The webhooks API: project admins only, bad input named and harmless, the secret shown once."""

import pytest
from django.test import override_settings

from annotation.models import Membership
from tests.conftest import api_client_for
from tests.factories import ProjectFactory, member
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def admin_api(project):
    return api_client_for(member(project, Membership.Role.ADMIN, username="ada"))


def create(api, project, **body):
    body = {"url": URL, "events": ["annotation.created"], **body}
    with override_settings(WEBHOOKS_ALLOW_PRIVATE_NETWORKS=True):
        return api.post(f"/api/projects/{project.pk}/webhooks/", body, format="json")


def delivery_of(endpoint, status="failed") -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, project=endpoint.project, event_id="msg_abc", event_type="annotation.created",
        payload={"type": "annotation.created", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": 1}},
        status=status, attempts=1, last_status_code=503, last_response_ms=12,
    )
    WebhookAttempt.objects.create(delivery=delivery, attempt=1, status_code=503, response_ms=12,
                                  started_at=delivery.created_at, finished_at=delivery.created_at)
    return delivery


def test_an_admin_creates_an_endpoint_and_sees_its_secret_once(project, admin_api):
    answer = create(admin_api, project, events=["task.completed", "annotation.created"], description="CI hook")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["events"] == ["annotation.created", "task.completed"]  # each once, in the documented order
    assert body["description"] == "CI hook" and body["active"] is True and body["url"] == URL

    listed = admin_api.get(f"/api/projects/{project.pk}/webhooks/").json()
    detail = admin_api.get(f"/api/projects/{project.pk}/webhooks/{body['id']}/").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0] and "secret" not in detail
    assert body["secret"] not in str(listed) + str(detail)

    rotated = admin_api.post(f"/api/projects/{project.pk}/webhooks/{body['id']}/rotate-secret/").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != body["secret"]
    assert WebhookEndpoint.objects.get().secret == rotated["secret"]


def test_an_admin_updates_deactivates_and_deletes_an_endpoint(project, admin_api):
    endpoint_id = create(admin_api, project).json()["id"]
    url = f"/api/projects/{project.pk}/webhooks/{endpoint_id}/"
    changed = admin_api.patch(url, {"active": False, "events": ["run.failed", "run.succeeded"]}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["active"] is False and changed.json()["events"] == ["run.succeeded", "run.failed"]
    assert admin_api.delete(url).status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "ftp://hooks.example.org/in"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://exa mple.org/"}, "url"),
        ({"url": "http://[::1"}, "url"),
        ({"url": "https://user:pw@hooks.example.org/"}, "url"),
        ({"url": 12}, "url"),
        ({"events": ["annotation.deleted"]}, "events"),
        ({"events": []}, "events"),
        ({"events": "nope"}, "events"),
        ({"events": [["annotation.created"]]}, "events"),
        ({"active": "maybe"}, "active"),
        ({"description": "x" * 501}, "description"),
        ({"secret": "whsec_mine"}, "secret"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(project, admin_api, body, field):
    endpoint_id = create(admin_api, project).json()["id"]
    before = list(WebhookEndpoint.objects.values())
    answer = create(admin_api, project, **body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["field"] == field
    patched = admin_api.patch(f"/api/projects/{project.pk}/webhooks/{endpoint_id}/", body, format="json")
    assert patched.status_code == 400 and patched.json()["field"] == field
    assert list(WebhookEndpoint.objects.values()) == before


def test_url_and_events_are_required(project, admin_api):
    answer = admin_api.post(f"/api/projects/{project.pk}/webhooks/", {"events": ["run.failed"]}, format="json")
    assert answer.status_code == 400 and answer.json()["field"] == "url"
    answer = admin_api.post(f"/api/projects/{project.pk}/webhooks/", {"url": URL}, format="json")
    assert answer.status_code == 400 and answer.json()["field"] == "events"
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_shows_status_response_time_and_attempts(project, admin_api):
    endpoint = WebhookEndpoint.objects.get(pk=create(admin_api, project).json()["id"])
    delivery = delivery_of(endpoint)
    listed = admin_api.get(f"/api/projects/{project.pk}/webhook-deliveries/?endpoint={endpoint.pk}").json()
    assert listed["count"] == 1
    row = listed["results"][0]
    assert (row["status"], row["last_status_code"], row["last_response_ms"]) == ("failed", 503, 12)
    detail = admin_api.get(f"/api/projects/{project.pk}/webhook-deliveries/{delivery.pk}/").json()
    assert detail["payload"]["data"] == {"id": 1} and detail["attempt_log"][0]["status_code"] == 503
    bad = admin_api.get(f"/api/projects/{project.pk}/webhook-deliveries/?endpoint=x")
    assert bad.status_code == 400 and bad.json()["field"] == "endpoint"


@pytest.mark.parametrize("role", [Membership.Role.LABELER, Membership.Role.REVIEWER, Membership.Role.ENGINEER])
def test_other_roles_of_the_project_are_refused_with_403(project, admin_api, role):
    endpoint = WebhookEndpoint.objects.get(pk=create(admin_api, project).json()["id"])
    delivery = delivery_of(endpoint)
    api = api_client_for(member(project, role))
    for status in _all_routes(api, project, endpoint, delivery):
        assert status == 403
    assert WebhookEndpoint.objects.get().secret == endpoint.secret and WebhookEndpoint.objects.get().active
    assert WebhookDelivery.objects.get().status == "failed"


def test_another_projects_admin_gets_404_and_sees_nothing(project, admin_api):
    endpoint = WebhookEndpoint.objects.get(pk=create(admin_api, project).json()["id"])
    delivery = delivery_of(endpoint)
    other = ProjectFactory()
    outsider = api_client_for(member(other, Membership.Role.ADMIN))
    for status in _all_routes(outsider, project, endpoint, delivery):
        assert status == 404
    # Through their own project, the other project's endpoint and delivery are not found either.
    assert outsider.get(f"/api/projects/{other.pk}/webhooks/{endpoint.pk}/").status_code == 404
    assert outsider.get(f"/api/projects/{other.pk}/webhook-deliveries/{delivery.pk}/").status_code == 404
    assert outsider.post(f"/api/projects/{other.pk}/webhook-deliveries/{delivery.pk}/redeliver/").status_code == 404
    assert outsider.get(f"/api/projects/{other.pk}/webhook-deliveries/").json()["count"] == 0
    assert WebhookEndpoint.objects.count() == 1 and WebhookDelivery.objects.get().status == "failed"


def _all_routes(api, project, endpoint, delivery) -> list[int]:
    base = f"/api/projects/{project.pk}"
    return [
        api.get(f"{base}/webhooks/").status_code,
        api.post(f"{base}/webhooks/", {"url": URL, "events": ["run.failed"]}, format="json").status_code,
        api.get(f"{base}/webhooks/{endpoint.pk}/").status_code,
        api.patch(f"{base}/webhooks/{endpoint.pk}/", {"active": False}, format="json").status_code,
        api.delete(f"{base}/webhooks/{endpoint.pk}/").status_code,
        api.post(f"{base}/webhooks/{endpoint.pk}/rotate-secret/").status_code,
        api.get(f"{base}/webhook-deliveries/").status_code,
        api.get(f"{base}/webhook-deliveries/{delivery.pk}/").status_code,
        api.post(f"{base}/webhook-deliveries/{delivery.pk}/redeliver/").status_code,
    ]


def test_a_pending_or_succeeded_delivery_is_not_redelivered(project, admin_api):
    endpoint = WebhookEndpoint.objects.get(pk=create(admin_api, project).json()["id"])
    delivery = delivery_of(endpoint, status="succeeded")
    answer = admin_api.post(f"/api/projects/{project.pk}/webhook-deliveries/{delivery.pk}/redeliver/")
    assert answer.status_code == 409 and answer.json()["field"] == "status"
    assert WebhookDelivery.objects.get().status == "succeeded"
