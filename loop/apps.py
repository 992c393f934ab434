from django.apps import AppConfig


class LoopConfig(AppConfig):
    """No models of its own (its rows are training's tables); an app for its tasks and commands."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "loop"

    def ready(self):
        from .annotation_hooks import register

        register()
