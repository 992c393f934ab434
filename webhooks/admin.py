"""Webhooks in Django admin: endpoints (never their secrets) and the delivery log, to look at."""

from django.contrib import admin

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "url", "active", "created_at")
    list_filter = ("active",)
    exclude = ("secret", "previous_secret")
    readonly_fields = ("project", "url", "events", "previous_secret_until", "created_by", "created_at", "updated_at")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("attempt", "status_code", "response_ms", "error", "started_at", "finished_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "endpoint", "event_type", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event_type")
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
