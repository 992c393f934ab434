"""Writes of the webhooks: endpoints (create, update, rotate the secret, end its grace, delete) and redelivery.

Each checks its input and names the field at fault (InvalidInput), before anything is written.
The caller has checked that the user manages the project (annotation/roles.py).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation.errors import Conflict, InvalidInput
from annotation.models import Project
from jobs.queue import job_enqueue

from . import addresses, signing
from .events import EVENT_TYPES, subscriptions_changed
from .models import WebhookDelivery, WebhookEndpoint

MAX_ENDPOINTS_PER_PROJECT = 20
MAX_DESCRIPTION = 500


def _events_clean(events) -> list[str]:
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, (list, tuple)) or not events:
        raise InvalidInput(f"events must be a non-empty list of: {', '.join(EVENT_TYPES)}.", field="events")
    unknown = [event for event in events if event not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"Unknown event {str(unknown[0])[:100]!r}; events are: {', '.join(EVENT_TYPES)}.", field="events"
        )
    return [event for event in EVENT_TYPES if event in events]  # each once, in the documented order


def _description_clean(description) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise InvalidInput("description must be text.", field="description")
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION} characters.", field="description")
    return description


def _active_clean(active) -> bool:
    if isinstance(active, bool):
        return active
    raise InvalidInput("active must be true or false.", field="active")


def endpoint_create(
    *, project: Project, url, events, description="", active=True, created_by: AbstractBaseUser | None = None
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows it once). The URL passes the SSRF rules now."""
    fields = {
        "url": addresses.url_check(url),
        "events": _events_clean(events),
        "description": _description_clean(description),
        "active": _active_clean(active),
    }
    if WebhookEndpoint.objects.filter(project=project).count() >= MAX_ENDPOINTS_PER_PROJECT:
        raise InvalidInput(f"A project has at most {MAX_ENDPOINTS_PER_PROJECT} webhook endpoints.", field="url")
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            project=project, secret=signing.secret_new(), created_by=created_by, **fields
        )
        subscriptions_changed(project_id=project.pk)
    return endpoint


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change any of url, events, description, active; all are checked before one is saved."""
    cleaners = {"url": addresses.url_check, "events": _events_clean, "description": _description_clean,
                "active": _active_clean}
    unknown = sorted(set(changes) - set(cleaners))
    if unknown:
        raise InvalidInput(f"{unknown[0]} cannot be changed; change url, events, description or active.",
                           field=unknown[0])
    cleaned = {name: cleaners[name](value) for name, value in changes.items()}
    if not cleaned:
        return endpoint
    with transaction.atomic():
        for name, value in cleaned.items():
            setattr(endpoint, name, value)
        endpoint.save(update_fields=[*cleaned, "updated_at"])
        subscriptions_changed(project_id=endpoint.project_id)
    return endpoint


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret at once; the one it replaces keeps signing beside it for WEBHOOKS_ROTATION_GRACE_HOURS.

    Every attempt in the grace, pending deliveries' too, carries both signatures, so a receiver still
    holding the old secret verifies until it switches. Only the secret just replaced is kept: a second
    rotation within the grace ends the first one's. With no grace (0) the old secret is dropped now.
    """
    grace = timedelta(hours=settings.WEBHOOKS_ROTATION_GRACE_HOURS)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        keep = grace > timedelta(0)
        endpoint.previous_secret = endpoint.secret if keep else ""
        endpoint.previous_secret_until = timezone.now() + grace if keep else None
        endpoint.secret = signing.secret_new()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until", "updated_at"])
    return endpoint


def endpoint_secret_grace_end(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """The previous secret stops signing now and is erased (the admin's receivers all hold the new one)."""
    if not endpoint.previous_secret and endpoint.previous_secret_until is None:
        raise Conflict("No previous secret is in its grace period.", field="previous_secret_until")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret="", previous_secret_until=None, updated_at=timezone.now()
    )
    endpoint.refresh_from_db()
    return endpoint


def previous_secrets_erase_expired() -> int:
    """Erase the previous secrets whose grace is over (beat, with the overdue deliveries); how many."""
    now = timezone.now()
    return WebhookEndpoint.objects.filter(previous_secret_until__lte=now).update(
        previous_secret="", previous_secret_until=None, updated_at=now
    )


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """The endpoint and its delivery log go; pending deliveries are never sent."""
    project_id = endpoint.project_id
    with transaction.atomic():
        endpoint.delete()
        subscriptions_changed(project_id=project_id)


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a failed delivery again, with a new round of attempts. A succeeded one is never sent twice."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.status == WebhookDelivery.Status.SUCCEEDED:
            raise Conflict("This delivery succeeded already; it is never sent twice.", field="status")
        if delivery.status == WebhookDelivery.Status.PENDING:
            raise Conflict("This delivery is still being attempted.", field="status")
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.attempts_allowed = min(delivery.attempts + settings.WEBHOOKS_MAX_ATTEMPTS, 32767)
        delivery.next_attempt_at = None
        delivery.locked_until = None
        delivery.updated_at = timezone.now()
        delivery.save(update_fields=["status", "attempts_allowed", "next_attempt_at", "locked_until", "updated_at"])
        delivery_id = delivery.pk
        transaction.on_commit(lambda: job_enqueue(task_name="webhooks.deliver", args=[delivery_id]))
    return delivery
