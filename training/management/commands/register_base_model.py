"""Register a local Hugging Face model directory as a global base model, after checking it loads."""

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import InvalidInput
from training import registry


class Command(BaseCommand):
    help = ("Register a local model directory (config.json, tokenizer, weights) as a global base model that "
            "every project may train from. Checked offline: the config, the tokenizer and the architecture.")

    def add_arguments(self, parser):
        parser.add_argument("path", help="The model directory, as save_pretrained wrote it.")
        parser.add_argument("--name", required=True, help="The name the registry shows (unique).")

    def handle(self, *args, path, name, **options):
        try:
            model = registry.base_model_register_dir(path=path, name=name)
        except InvalidInput as exc:
            raise CommandError(exc.message) from None
        facts = registry.model_dir_check(model.path)
        self.stdout.write(self.style.SUCCESS(
            f"Registered {model.name} (base, global) at {model.path} (id {model.pk}): "
            f"{facts['architecture']}, {facts['parameters'] / 1e6:,.1f}M parameters"
        ))
