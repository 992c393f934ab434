"""Reads of the webhooks, always within one project the caller may manage (annotation/roles.py)."""

from datetime import datetime

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from annotation.ids import as_id
from annotation.models import Project

from . import signing
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def endpoint_list(*, project: Project) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(project=project).order_by("id")


def endpoint_get(*, project: Project, endpoint_id) -> WebhookEndpoint:
    """The project's endpoint, or 404 (another project's endpoint is never found through this one)."""
    endpoint = WebhookEndpoint.objects.filter(project=project, pk=as_id(endpoint_id) or 0).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


def delivery_list(*, project: Project, endpoint_id=None) -> QuerySet[WebhookDelivery]:
    """The project's deliveries, newest first (of one endpoint, if given)."""
    deliveries = WebhookDelivery.objects.filter(project=project).order_by("-id")
    if endpoint_id is not None:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    return deliveries


def delivery_get(*, project: Project, delivery_id) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.filter(project=project, pk=as_id(delivery_id) or 0).first()
    if delivery is None:
        raise Http404("No such webhook delivery.")
    return delivery


def attempt_list(*, delivery: WebhookDelivery) -> QuerySet[WebhookAttempt]:
    return WebhookAttempt.objects.filter(delivery=delivery).order_by("attempt")


def previous_secret_valid_until(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> datetime | None:
    """Until when the secret replaced by the last rotation still signs; None when only the current one does."""
    secrets = signing.secrets_signing(secret=endpoint.secret, previous_secret=endpoint.previous_secret,
                                      previous_until=endpoint.previous_secret_until, now=now or timezone.now())
    return endpoint.previous_secret_until if len(secrets) > 1 else None
