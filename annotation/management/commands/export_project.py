"""manage.py export_project <project-slug> --format sft|preference|raw [--output FILE] [filters]

--hf-dataset writes a Hugging Face dataset directory instead (sft or preference; docs/datasets-and-hub.md):
into --output as a folder, or as a tar when --output ends in .tar. --license sets its card's license.

Filters (docs/quality.md): --exclude-gold --reviewed-only --exclude-flagged --min-competence 0.7
--consensus margin|weight --ties.
"""

import os
import shutil
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import InvalidInput
from annotation.export_filters import CONSENSUS_MODES, ExportFilters
from annotation import export_records
from annotation.archives import tar_chunks
from annotation.dataset_archive import dataset_archive_name
from annotation.hf_dataset import dataset_check, dataset_dir_write
from annotation.exporters import FORMATS, export_lines
from annotation.models import Project


class Command(BaseCommand):
    help = "Export a project's annotations as JSON lines in a TRL format (sft, preference) or raw."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--output", help="write to this file (replaced only when complete); default stdout")
        parser.add_argument("--hf-dataset", action="store_true",
                            help="write a Hugging Face dataset directory (parquet + card) to --output (a folder, "
                                 "or a .tar)")
        parser.add_argument("--license", help="the dataset card's license with --hf-dataset (default: other)")
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
        filters.add_argument("--ties", action="store_true",
                             help="preference: tied responses also as pairs, one each way with margin 0")
        filters.add_argument("--since", metavar="DATE", help="only work from this date (YYYY-MM-DD, UTC) or ISO time on")
        filters.add_argument("--until", metavar="DATE", help="only work up to this date (the whole day) or ISO time")
        filters.add_argument("--labeler", metavar="USERNAME", help="only this labeler's work")
        filters.add_argument("--since-last-export", action="store_true",
                             help="only work since the project's last complete export in this format")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug '{options['project']}'.")
        try:
            filters = ExportFilters.from_mapping(
                {key: options[key] for key in ("exclude_gold", "reviewed_only", "exclude_flagged", "min_competence",
                                               "consensus", "ties", "since", "until", "labeler",
                                               "since_last_export")
                 if options[key] not in (None, False)}
            )
            filters = export_records.with_last_export(filters, project=project, fmt=options["format"])
            if options["hf_dataset"]:
                return self._dataset(project=project, filters=filters, options=options)
            lines = export_lines(project=project, fmt=options["format"], filters=filters)
            lines = export_records.recorded(lines, project=project, fmt=options["format"], filters=filters, user=None)
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

    def _dataset(self, *, project: Project, filters: ExportFilters, options: dict) -> None:
        """The dataset directory written into a fresh folder, or into a tar beside --output, then moved in place."""
        license = dataset_check(project=project, fmt=options["format"], filters=filters, license=options["license"])
        if not options["output"]:
            raise CommandError("--hf-dataset needs --output: a folder to create, or a file ending in .tar.")
        target = Path(options["output"])
        if not target.parent.is_dir():
            raise CommandError(f"No such directory: {target.parent}.")
        if target.exists() and not (target.is_file() and target.suffix == ".tar"):
            raise CommandError(f"{target} exists already: name a new folder (or a .tar file to replace).")
        scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            summary = dataset_dir_write(project=project, fmt=options["format"], filters=filters, license=license,
                                        folder=scratch)
            if target.suffix == ".tar":
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
                with os.fdopen(fd, "wb") as out:
                    for chunk in tar_chunks(scratch, root=dataset_archive_name(project=project, fmt=options["format"])):
                        out.write(chunk)
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            else:
                scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.stderr.write(f"Exported {summary.rows} rows in {len(summary.shards)} parquet file(s) to {target}.")
