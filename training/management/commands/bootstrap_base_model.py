"""Build (if missing) and register the base model named by settings.BASE_MODEL."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from training import services


class Command(BaseCommand):
    help = "Build the tiny base model into STORAGE_ROOT/models/tiny if missing, and register it (or register BASE_MODEL)."

    def add_arguments(self, parser):
        parser.add_argument("--max-steps", type=int, default=None, help="Pretraining steps for the tiny model.")
        parser.add_argument("--force", action="store_true", help="Rebuild the tiny model even if it exists.")

    def handle(self, *args, max_steps=None, force=False, **options):
        started = time.monotonic()
        if settings.BASE_MODEL == "tiny":
            folder = settings.STORAGE_ROOT / "models" / "tiny"
            if force or not (folder / "config.json").exists():
                # The first `make demo` spends most of its time here: say so, instead of going quiet.
                self.stdout.write(
                    f"Building the tiny base model under {folder}: a tokenizer and a small GPT trained on the "
                    "bundled text, on the CPU. This takes one to two minutes, once."
                )
                self.stdout.flush()
            else:
                self.stdout.write(f"Base model: tiny, already built under {folder}")
        model = services.base_model_bootstrap(max_steps=max_steps, force=force,
                                              on_progress=self._progress_printer(started))
        took = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(
            f"Registered {model.name} ({model.kind}) at {model.path} (id {model.pk}) in {took:.0f} s"
        ))

    def _progress_printer(self, started: float):
        """A line at the first step, about every tenth of the steps, and at least every 15 s, so a long build
        is never silent (the build also stops at its time budget, so on a slow machine it ends before its last step)."""
        shown = {"tenth": -1, "at": 0.0}

        def show(event: dict) -> None:
            step, total = int(event.get("step") or 0), int(event.get("total") or 0)
            if total <= 0:
                return
            tenth = step * 10 // total
            if tenth == shown["tenth"] and time.monotonic() - shown["at"] < 15:
                return
            shown["tenth"], shown["at"] = tenth, time.monotonic()
            loss = (event.get("metrics") or {}).get("loss")
            loss_text = f", loss {loss:.2f}" if isinstance(loss, (int, float)) else ""
            self.stdout.write(f"  step {step}/{total}{loss_text}, {time.monotonic() - started:.0f} s")
            self.stdout.flush()

        return show
