from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"

    def ready(self):
        # Training plugs into annotation's pages and rules; annotation never imports training.
        from .annotation_hooks import register

        register()
