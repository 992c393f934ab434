"""Dataset snapshots: an export frozen into a file under STORAGE_ROOT, with its sha256 and row count.

Training runs read snapshots, never live tables, so a run can be repeated on exactly the data it
saw. The file is written a line at a time (constant memory) to a temporary name and renamed into
place, STORAGE_ROOT/snapshots/<project id>/<snapshot id>.jsonl, once its row exists.

A caller's transaction that rolls back after the rename takes the row away but leaves the file;
so does a process killed mid-write (a .tmp- file). snapshots_sweep_orphans, hourly from beat,
deletes such files once they are older than any transaction that could still commit them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q

from annotation import exporters
from annotation.errors import InvalidInput
from annotation.export_filters import ExportFilters
from annotation.models import ANNOTATION_COUNTS, Annotation, Project

from .models import DatasetSnapshot

CHUNK_SIZE = 500
PROGRESS_ROWS = 2000  # snapshot_freeze reports its progress this often
ORPHAN_AFTER = timedelta(hours=1)
EMPTY_MESSAGES = {
    DatasetSnapshot.Format.SFT: "The project has no demonstrations to train on.",
    DatasetSnapshot.Format.PREFERENCE: "The project has no preference pairs to train on (comparisons without ties).",
    DatasetSnapshot.Format.PROMPTS: "The project has no prompts to train on.",
}


def storage_path(relative: str | os.PathLike) -> Path:
    """An absolute path for a path stored relative to STORAGE_ROOT (absolute paths pass through)."""
    path = Path(relative)
    return path if path.is_absolute() else Path(settings.STORAGE_ROOT) / path


def _prompt_lines(*, project: Project) -> Iterator[str]:
    rows = project.prompts.order_by("id").values_list("messages", flat=True).iterator(chunk_size=CHUNK_SIZE)
    for messages in rows:
        yield json.dumps({"prompt": messages}, ensure_ascii=False) + "\n"


def _lines(*, project: Project, format: str, filters: ExportFilters) -> Iterator[str]:
    if format == DatasetSnapshot.Format.PROMPTS:
        return _prompt_lines(project=project)
    return exporters.export_lines(project=project, fmt=format, filters=filters)


def _check(*, format: str, filters: ExportFilters) -> None:
    if format not in DatasetSnapshot.Format.values:
        raise InvalidInput(f"format must be one of {', '.join(DatasetSnapshot.Format.values)}.", field="format")
    if filters and format == DatasetSnapshot.Format.PROMPTS:
        raise InvalidInput("A prompts snapshot holds no annotations, so the quality filters do not apply.",
                           field="filters")


def _empty_error(*, format: str, filters: ExportFilters) -> InvalidInput:
    if filters:
        return InvalidInput(f"{EMPTY_MESSAGES[format][:-1]} once the quality filters are applied.", field="filters")
    return InvalidInput(EMPTY_MESSAGES[format], field="project")


def snapshot_precheck(*, project: Project, format: str, filters: ExportFilters | None = None) -> None:
    """Before a run is queued: InvalidInput if its snapshot would surely be empty, or its filters cannot apply.

    Cheap at any size: the filters are resolved as an export would resolve them, and one EXISTS
    asks for a row that could make a line. A row can still make none (a comparison of ties only,
    or a labeler below min_competence): then the worker's freeze fails the run with the message.
    """
    filters = filters or ExportFilters()
    _check(format=format, filters=filters)
    if format == DatasetSnapshot.Format.PROMPTS:
        if not project.prompts.exists():
            raise _empty_error(format=format, filters=filters)
        return
    exporters.export_lines(project=project, fmt=format, filters=filters)  # checks the filters; makes no line
    if format == DatasetSnapshot.Format.SFT:
        kind = Q(kind=Annotation.Kind.DEMONSTRATION) | Q(kind=Annotation.Kind.COMPARISON, edited_response__isnull=False)
    else:
        kind = Q(kind=Annotation.Kind.COMPARISON, all_bad=False) | Q(
            kind=Annotation.Kind.COMPARISON, edited_response__isnull=False)
    rows = Annotation.objects.filter(kind, ANNOTATION_COUNTS, filters.annotation_q(), project=project)
    if not rows.exists():
        raise _empty_error(format=format, filters=filters)


def snapshot_expected_rows(*, project: Project, format: str, filters: ExportFilters | None = None) -> int | None:
    """How many rows a freeze will write, where one COUNT says it (prompts, sft without min_competence); else None."""
    filters = filters or ExportFilters()
    if format == DatasetSnapshot.Format.PROMPTS:
        return project.prompts.count()
    if format == DatasetSnapshot.Format.SFT and filters.min_competence is None:
        return exporters.export_count(project=project, fmt=format, filters=filters)
    return None  # preference pairs are counted from every ranking: as slow as the export itself


def snapshot_freeze(
    *, project: Project, format: str, created_by: AbstractBaseUser | None = None, allow_empty: bool = True,
    filters: ExportFilters | None = None, on_progress: Callable[[int], None] | None = None,
) -> DatasetSnapshot:
    """Write the project's `format` export to a file and record it. Empty and allow_empty=False: InvalidInput.

    `filters` (annotation/export_filters.py) choose which annotations the export keeps, and are
    recorded on the snapshot. A prompts snapshot holds no annotations, so it takes none.
    `on_progress(rows)` is called every PROGRESS_ROWS rows; whatever it raises stops the freeze and
    leaves no file behind.
    """
    filters = filters or ExportFilters()
    _check(format=format, filters=filters)
    folder = Path("snapshots") / str(project.pk)
    (storage_path(folder)).mkdir(parents=True, exist_ok=True)
    tmp = storage_path(folder / f".tmp-{uuid.uuid4().hex}.jsonl")
    digest, rows = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for line in _lines(project=project, format=format, filters=filters):
                data = line.encode("utf-8")
                digest.update(data)
                out.write(data)
                rows += 1
                if on_progress is not None and rows % PROGRESS_ROWS == 0:
                    on_progress(rows)
        if rows == 0 and not allow_empty:
            raise _empty_error(format=format, filters=filters)
        with transaction.atomic():
            snapshot = DatasetSnapshot.objects.create(
                project=project, format=format, path="", sha256=digest.hexdigest(), row_count=rows,
                created_by=created_by, filters=filters.as_dict(),
            )
            relative = folder / f"{snapshot.pk}.jsonl"
            os.replace(tmp, storage_path(relative))
            snapshot.path = relative.as_posix()
            snapshot.save(update_fields=["path", "updated_at"])
    finally:
        tmp.unlink(missing_ok=True)
    return snapshot


def snapshot_verify(*, snapshot: DatasetSnapshot) -> bool:
    """True when the snapshot's file still has the recorded sha256."""
    digest = hashlib.sha256()
    try:
        with open(storage_path(snapshot.path), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return False
    return digest.hexdigest() == snapshot.sha256


def snapshots_sweep_orphans(*, older_than: timedelta = ORPHAN_AFTER) -> list[str]:
    """Delete snapshot files no DatasetSnapshot row refers to, once older than `older_than`.

    Returns their paths relative to STORAGE_ROOT. A younger file may belong to a transaction
    that has not committed yet, so it is left for a later sweep.
    """
    root = storage_path("snapshots")
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    old = {
        p.relative_to(settings.STORAGE_ROOT).as_posix(): p
        for p in root.glob("*/*.jsonl") if p.is_file() and p.stat().st_mtime < cutoff
    }
    if not old:
        return []
    known = set(DatasetSnapshot.objects.filter(path__in=list(old)).values_list("path", flat=True))
    removed = [relative for relative in old if relative not in known]
    for relative in removed:
        old[relative].unlink(missing_ok=True)
    return removed
