from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self):
        # Register the app's Celery tasks in every process, the web's too: reliability/store.py sends
        # the quality task by its name, as annotation/tasks.py imports the store and not the reverse.
        from . import tasks  # noqa: F401
