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
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation import exporters
from annotation.errors import InvalidInput
from annotation.export_filters import ExportFilters
from annotation.models import Project

from .models import DatasetSnapshot

CHUNK_SIZE = 500
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


def snapshot_freeze(
    *, project: Project, format: str, created_by: AbstractBaseUser | None = None, allow_empty: bool = True,
    filters: ExportFilters | None = None,
) -> DatasetSnapshot:
    """Write the project's `format` export to a file and record it. Empty and allow_empty=False: InvalidInput.

    `filters` (annotation/export_filters.py) choose which annotations the export keeps, and are
    recorded on the snapshot. A prompts snapshot holds no annotations, so it takes none.
    """
    filters = filters or ExportFilters()
    if format not in DatasetSnapshot.Format.values:
        raise InvalidInput(f"format must be one of {', '.join(DatasetSnapshot.Format.values)}.", field="format")
    if filters and format == DatasetSnapshot.Format.PROMPTS:
        raise InvalidInput("A prompts snapshot holds no annotations, so the quality filters do not apply.",
                           field="filters")
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
        if rows == 0 and not allow_empty:
            if filters:
                raise InvalidInput(f"{EMPTY_MESSAGES[format][:-1]} once the quality filters are applied.",
                                   field="filters")
            raise InvalidInput(EMPTY_MESSAGES[format], field="project")
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
