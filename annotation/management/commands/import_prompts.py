"""manage.py import_prompts <project-slug> <file> [--format FORMAT] [--update] [--source NAME] [--hide-labels]"""

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import InvalidInput
from annotation.importers import FORMATS, prompts_import
from annotation.models import Project


class Command(BaseCommand):
    help = "Import prompts from a JSONL or CSV file into a project. Atomic: one bad line rejects the file."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("file", help="a .jsonl or .csv file")
        parser.add_argument("--format", choices=FORMATS, help="default: from the file name, else sniffed")
        parser.add_argument(
            "--update", action="store_true",
            help="replace prompts whose id exists with other content, unless labelers depend on them "
            "(without it such lines are only reported)",
        )
        parser.add_argument(
            "--source", help="the external source imported labels are credited to (default: the format)"
        )
        parser.add_argument(
            "--hide-labels", action="store_true", help="keep imported labels hidden: they count toward no task"
        )

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug '{options['project']}'.")
        try:
            with open(options["file"], "rb") as fileobj:
                result = prompts_import(
                    project=project, fileobj=fileobj, filename=options["file"], fmt=options["format"],
                    mode="update" if options["update"] else "add", source=options["source"],
                    labels="hide" if options["hide_labels"] else "use",
                )
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        except InvalidInput as exc:
            for item in exc.details:
                self.stderr.write(f"line {item['line']}: {item['error']}")
            if exc.extra.get("errors_not_listed"):
                self.stderr.write(f"and {exc.extra['errors_not_listed']} more")
            raise CommandError(exc.message) from None
        for note in result.notes.sorted_items():
            self.stdout.write(note["message"])
        if result.notes.not_listed:
            self.stdout.write(f"and {result.notes.not_listed} more")
        self.stdout.write(
            f"Created {result.created_prompts} prompts and {result.created_tasks} tasks; "
            f"skipped {result.skipped_existing} that exist already."
        )
        if result.format not in ("jsonl", "csv"):
            hidden = ", hidden" if result.labels == "hide" else ""
            self.stdout.write(
                f"Imported {result.created_labels} labels from {result.source} ({result.format}{hidden})."
            )
        if result.changed_kept or result.updated_prompts:
            hint = "." if options["update"] else " (--update replaces them where no labeler depends on them)."
            self.stdout.write(
                f"{result.updated_prompts} changed prompts replaced; "
                f"{result.changed_kept} changed lines kept the original{hint}"
            )
