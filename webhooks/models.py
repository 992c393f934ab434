"""Webhook endpoints of a project, the deliveries of each event to them, and every attempt made.

An endpoint is where a project's events go (an http(s) URL, the events it subscribes to, its signing
secret). A delivery is one event for one endpoint; it is unique on (endpoint, event_id), so an event
fanned out twice still makes one delivery, and its status only ever moves from pending to succeeded
or failed once (webhooks/delivery.py). Every HTTP request made for it is an attempt.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import TimeStamped


class EventType(models.TextChoices):
    ANNOTATION_CREATED = "annotation.created", "A label (demonstration, comparison or skip) was submitted"
    TASK_COMPLETED = "task.completed", "A task received the labels it requires"
    PROJECT_COMPLETED = "project.completed", "The project's last open task was completed"
    RUN_SUCCEEDED = "run.succeeded", "A training run succeeded"
    RUN_FAILED = "run.failed", "A training run failed"
    MODEL_REGISTERED = "model.registered", "A model was registered in the project"
    GENERATION_COMPLETED = "generation.completed", "A generation job made its comparison tasks"
    EVALUATION_COMPLETED = "evaluation.completed", "Every comparison of an A/B evaluation was labeled"


class WebhookEndpoint(TimeStamped):
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    active = models.BooleanField(default=True)
    events = models.JSONField(default=list, help_text="The event types sent to this endpoint.")
    # The Standard Webhooks secret, "whsec_" and base64. The platform signs with it, so it is stored
    # as it is; the API and the pages show it once, when it is made or rotated.
    secret = models.CharField(max_length=100)
    # After a rotation the secret it replaced still signs, beside the new one, until
    # previous_secret_until (WEBHOOKS_ROTATION_GRACE_HOURS): stored and never shown, like `secret`,
    # and erased once the grace is over (webhooks/services.py).
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "active"], name="webhook_endpoint_active")]

    def __str__(self) -> str:
        return f"Webhook {self.pk} of project {self.project_id}: {self.url}"


class WebhookDelivery(TimeStamped):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=64, help_text="The event's id, sent as the webhook-id header.")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    payload = models.JSONField(help_text="The body sent: type, timestamp and data.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    attempts_allowed = models.PositiveSmallIntegerField(default=5, help_text="A redelivery allows more.")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_response_ms = models.PositiveIntegerField(null=True, blank=True)
    # A worker sending an attempt holds the delivery until then; another copy of the task message waits.
    locked_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed"]), name="webhook_delivery_status_known"
            ),
        ]
        indexes = [models.Index(fields=["project", "-id"], name="webhook_delivery_project")]

    def __str__(self) -> str:
        return f"Delivery {self.pk}: {self.event_type} {self.event_id} to endpoint {self.endpoint_id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempt = models.PositiveSmallIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["attempt"]
        constraints = [models.UniqueConstraint(fields=["delivery", "attempt"], name="webhook_attempt_numbered")]
