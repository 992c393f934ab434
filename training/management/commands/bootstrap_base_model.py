"""Build (if missing) and register the base model named by settings.BASE_MODEL."""

from django.conf import settings
from django.core.management.base import BaseCommand

from training import services


class Command(BaseCommand):
    help = "Build the tiny base model into STORAGE_ROOT/models/tiny if missing, and register it (or register BASE_MODEL)."

    def add_arguments(self, parser):
        parser.add_argument("--max-steps", type=int, default=None, help="Pretraining steps for the tiny model.")
        parser.add_argument("--force", action="store_true", help="Rebuild the tiny model even if it exists.")

    def handle(self, *args, max_steps=None, force=False, **options):
        if settings.BASE_MODEL == "tiny":
            self.stdout.write(f"Base model: tiny, under {settings.STORAGE_ROOT / 'models' / 'tiny'}")
        model = services.base_model_bootstrap(max_steps=max_steps, force=force)
        self.stdout.write(self.style.SUCCESS(f"Registered {model.name} ({model.kind}) at {model.path} (id {model.pk})"))
