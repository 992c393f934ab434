"""Exports remember themselves, so an admin can export "since the last export" (models.ExportRecord)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from .export_filters import ExportFilters, moment
from .models import ExportRecord, Project


def with_last_export(filters: ExportFilters, *, project: Project, fmt: str) -> ExportFilters:
    """since_last_export turned into `since`: the start of the project's last complete export in `fmt`.

    With no export before, everything is new: the filter keeps all. A later `since` the caller
    gave wins over the last export's.
    """
    if not filters.since_last_export:
        return filters
    last = ExportRecord.objects.filter(project=project, format=fmt).order_by("-started_at").first()
    since = filters.since
    if last is not None and (not since or last.started_at > moment(since)):
        since = last.started_at.isoformat()
    return dataclasses.replace(filters, since=since, since_last_export=False)


def recorded(lines: Iterable[str] | Iterable[bytes], *, project: Project, fmt: str, filters: ExportFilters,
             user: AbstractBaseUser | None) -> Iterator[str | bytes]:
    """Pass the export's lines or blocks of lines (str, or UTF-8 bytes) through and, once the last has gone out,
    record the export.

    Every line ends in the only newline it holds, so the rows are counted by newlines.
    """
    started = timezone.now()
    count = 0
    for line in lines:
        count += line.count(b"\n" if isinstance(line, bytes) else "\n")
        yield line
    ExportRecord.objects.create(
        project=project, format=fmt, filters=filters.as_dict(), rows=count, started_at=started,
        created_by=user if user is not None and user.is_authenticated else None,
    )
