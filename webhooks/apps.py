from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Signed webhooks: a project's events, delivered to its endpoints by Celery (docs/webhooks.md)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self):
        from . import tasks  # noqa: F401  the web process sends the delivery tasks by name
        from .annotation_hooks import register

        register()
