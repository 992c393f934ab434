"""manage.py export_project <project-slug> --format sft|preference|raw [--output FILE]"""

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import InvalidInput
from annotation.exporters import FORMATS, export_lines
from annotation.models import Project


class Command(BaseCommand):
    help = "Export a project's annotations as JSON lines in a TRL format (sft, preference) or raw."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--output", help="write to this file (replaced only when complete); default stdout")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug '{options['project']}'.")
        try:
            lines = export_lines(project=project, fmt=options["format"])
        except InvalidInput as exc:
            raise CommandError(exc.message) from None
        if not options["output"]:
            count = 0
            for line in lines:
                self.stdout.write(line, ending="")
                count += 1
            self.stderr.write(f"Exported {count} lines.")
            return
        target = Path(options["output"])
        if not target.parent.is_dir():
            raise CommandError(f"No such directory: {target.parent}.")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        os.chmod(tmp, 0o644)
        count = 0
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                for line in lines:
                    out.write(line)
                    count += 1
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
        self.stderr.write(f"Exported {count} lines to {target}.")
