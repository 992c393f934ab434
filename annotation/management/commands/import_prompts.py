"""manage.py import_prompts <project-slug> <file> [--format jsonl|csv]"""

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

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug '{options['project']}'.")
        try:
            with open(options["file"], "rb") as fileobj:
                result = prompts_import(
                    project=project, fileobj=fileobj, filename=options["file"], fmt=options["format"]
                )
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        except InvalidInput as exc:
            for item in exc.details:
                self.stderr.write(f"line {item['line']}: {item['error']}")
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Created {result.created_prompts} prompts and {result.created_tasks} tasks; "
            f"skipped {result.skipped_existing} that exist already."
        )
