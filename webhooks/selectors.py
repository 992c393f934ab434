"""Reads of the webhooks, always within one project the caller may manage (annotation/roles.py)."""

from django.db.models import QuerySet
from django.http import Http404

from annotation.ids import as_id
from annotation.models import Project

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
