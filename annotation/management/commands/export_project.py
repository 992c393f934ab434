"""manage.py export_project <project-slug> --format sft|preference|raw [--output FILE] [filters]

Filters (docs/quality.md): --exclude-gold --reviewed-only --exclude-flagged --min-competence 0.7
--consensus margin|weight.
"""

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import InvalidInput
from annotation.export_filters import CONSENSUS_MODES, ExportFilters
from annotation.exporters import FORMATS, export_lines
from annotation.models import Project


class Command(BaseCommand):
    help = "Export a project's annotations as JSON lines in a TRL format (sft, preference) or raw."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--output", help="write to this file (replaced only when complete); default stdout")
        filters = parser.add_argument_group("quality filters (docs/quality.md)")
        filters.add_argument("--exclude-gold", action="store_true", help="leave out annotations on gold tasks")
        filters.add_argument("--reviewed-only", action="store_true",
                             help="keep only annotations a reviewer accepted, and reviewers' corrections")
        filters.add_argument("--exclude-flagged", action="store_true",
                             help="leave out annotations the quality check flagged, unless a reviewer accepted them")
        filters.add_argument("--min-competence", metavar="0..1",
                             help="leave out labelers whose competence is below this")
        filters.add_argument("--consensus", choices=[mode for mode in CONSENSUS_MODES if mode],
                             help="preference: one Dawid-Skene pair per comparison, confidence as margin or weight")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug '{options['project']}'.")
        try:
            filters = ExportFilters.from_mapping(
                {key: options[key] for key in ("exclude_gold", "reviewed_only", "exclude_flagged", "min_competence",
                                               "consensus") if options[key] not in (None, False)}
            )
            lines = export_lines(project=project, fmt=options["format"], filters=filters)
        except InvalidInput as exc:
            flag = f"--{exc.field.replace('_', '-')}: " if exc.field else ""
            raise CommandError(f"{flag}{exc.message}") from None
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
