"""A dataset directory (hf_dataset) as a streamed tar: written into a scratch folder, sent, then removed.

The parquet shards have their footer at the end, so the directory is written whole before its first
byte leaves; the writing itself keeps flat memory (hf_dataset), and the tar streams file by file
(archives.tar_chunks). The scratch folder goes away when the stream ends, is closed or fails.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .archives import tar_chunks
from .export_filters import ExportFilters
from .hf_dataset import dataset_check, dataset_dir_write
from .models import Project


def dataset_archive_name(*, project: Project, fmt: str) -> str:
    return f"{project.slug}-{fmt}-dataset"


def dataset_archive_chunks(
    *, project: Project, fmt: str, filters: ExportFilters | None, license: str | None,
) -> Iterator[bytes]:
    """Check the input now (a bad one is InvalidInput, so a 400 and no broken stream), then stream lazily."""
    license = dataset_check(project=project, fmt=fmt, filters=filters, license=license)
    return _chunks(project=project, fmt=fmt, filters=filters, license=license)


def _chunks(*, project: Project, fmt: str, filters: ExportFilters | None, license: str) -> Iterator[bytes]:
    scratch = Path(tempfile.mkdtemp(prefix="feedbackloop-dataset-"))
    try:
        dataset_dir_write(project=project, fmt=fmt, filters=filters, license=license, folder=scratch)
        yield from tar_chunks(scratch, root=dataset_archive_name(project=project, fmt=fmt))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
