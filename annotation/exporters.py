"""Streamed exports in the formats TRL loads directly. The formats are in README.md ("For the admin").

- sft: one line per demonstration,
  {"messages": [...prompt, {"role": "assistant", "content": demonstration}]}
- preference: one line per ordered pair of a comparison's ranking (best first; a group of
  several responses is a tie),
  {"prompt": [...], "chosen": [{"role": "assistant", ...}], "rejected": [...], "margin": float}.
  A ranking of K expands into its K-choose-2 pairs; tied responses give no pair, and neither
  does an "all bad" comparison. The margin of a pair of two responses comes from the labeler's
  strength (export_pairs.STRENGTH_MARGIN). With more than two responses it is RANK_GAP_MARGIN per
  rank between the two groups, capped at MAX_MARGIN: first vs second 0.25, first vs third 0.5.
- raw: every annotation, skips included, with a pseudonymous labeler id, the labeler's
  competence in the last quality report (`labeler_competence`, null when unknown) and the
  annotation's `review_state`: "unreviewed", "pending" (waiting in the review queue),
  "accepted", or "correction" (a reviewer's correction, which replaced a labeler's annotation).

Only annotations that count are exported (models.ANNOTATION_COUNTS): a rejected annotation is
left out, and a corrected one gives way to its correction, the reviewer's own annotation.
ExportFilters (export_filters.py) leave out more: gold tasks, unreviewed or flagged work, labelers
below a competence. With `consensus`, the preference export gives one pair per comparison task
(consensus.py) instead of every labeler's pairs; with `ties`, two responses a labeler tied also
give two pairs, one in each order with margin 0 (export_pairs.py). export_count says how many
lines an export would have without reading a text.

A comparison may carry the labeler's edit of the best response (annotation.edits): the edit is a
demonstration in `sft` (after the demonstrations' rows, in the same annotation id order), a pair
of the edit chosen over the original with margin EDIT_MARGIN in `preference` (after the
ranking's pairs), and {"response_id", "text"} under "edit" in `raw` (null when there is none).

Lines come out in annotation id order (pairs in ranking order, ids ascending within a group),
so two exports of the same data are byte-identical. The rows are read from a server-side cursor
a batch at a time, and each batch's texts come in one query: memory does not grow with the
project, and the first lines leave before the last rows are read (export_stream.py). The lines
are assembled from the database's values without model instances (export_fast.py); the ORM
writers they must match, which also make the consensus and ties exports, are in export_reference.py.

The modules: export_scope (filters resolved, which rows), export_pairs (pairs and margins),
export_stream (the cursor), export_fast (the writers), export_reference (the reference writers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import Q

from .export_fast import fast_batches
from .export_filters import ExportFilters
from .export_pairs import EDIT_MARGIN, MAX_MARGIN, RANK_GAP_MARGIN, annotation_pairs, ranking_pairs
from .export_reference import reference_lines
from .export_scope import FORMATS, PSEUDONYM_CHARS, ExportScope, export_scope, labeler_pseudonym, sft_rows
from .export_stream import BATCH_ROWS, row_batches
from .models import ANNOTATION_COUNTS, Annotation, Project, Response

__all__ = [
    "EDIT_MARGIN", "FORMATS", "MAX_MARGIN", "PSEUDONYM_CHARS", "RANK_GAP_MARGIN", "export_blocks", "export_count",
    "export_lines", "labeler_pseudonym", "ranking_pairs",
]


def export_lines(*, project: Project, fmt: str, filters: ExportFilters | None = None) -> Iterator[str]:
    """JSON lines (each ending in a newline) of the project's annotations in the format `fmt`.

    The format and the filters are checked now, before any line is made, so a bad one is a 400
    and not a broken stream. The lines themselves are made as the caller iterates.
    """
    batches = _batches(project=project, fmt=fmt, scope=export_scope(project=project, fmt=fmt, filters=filters))
    return (line for batch in batches for line in batch)


def export_blocks(*, project: Project, fmt: str, filters: ExportFilters | None = None) -> Iterator[bytes]:
    """export_lines in UTF-8, joined into one block per batch of rows: what a streamed response writes.

    Each line still ends in the only newline it holds, so counting newlines counts lines. A big
    export is read by two PostgreSQL backends at once (export_halves.py); export_lines, which a
    run's snapshot freeze reads while it writes its progress, keeps to one. The blocks are bytes,
    so the raw lines PostgreSQL writes go from the driver to the response undecoded
    (export_fast.fast_batches with binary).
    """
    scope = export_scope(project=project, fmt=fmt, filters=filters)
    if scope.consensus or scope.ties:
        return ("".join(batch).encode() for batch in _reference_batches(project=project, fmt=fmt, scope=scope))
    batches = fast_batches(project=project, fmt=fmt, scope=scope, two_backends=True, binary=True)
    return (b"".join(batch) for batch in batches)


def _batches(*, project: Project, fmt: str, scope: ExportScope) -> Iterator[list[str]]:
    if scope.consensus or scope.ties:
        return _reference_batches(project=project, fmt=fmt, scope=scope)
    return fast_batches(project=project, fmt=fmt, scope=scope)


def _reference_batches(*, project: Project, fmt: str, scope: ExportScope) -> Iterator[list[str]]:
    """The consensus and ties exports, made by the reference writer (export_reference.py), in batches."""
    batch: list[str] = []
    for line in reference_lines(project=project, fmt=fmt, scope=scope):
        batch.append(line)
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def export_count(*, project: Project, fmt: str, filters: ExportFilters | None = None) -> int:
    """How many lines export_lines would give (pairs for preference), from ids alone: no text is read."""
    scope = export_scope(project=project, fmt=fmt, filters=filters)
    if fmt == "preference":
        return _preference_count(project=project, scope=scope)
    where = sft_rows() if fmt == "sft" else Q()
    return Annotation.objects.filter(where, ANNOTATION_COUNTS, scope.where, project_id=project.pk).count()


def _preference_count(*, project: Project, scope: ExportScope) -> int:
    from . import consensus

    if scope.consensus:
        pairs = len(consensus.consensus_pairs(project=project, where=scope.where))
        edits = Annotation.objects.filter(
            ANNOTATION_COUNTS, scope.where, project_id=project.pk, kind=Annotation.Kind.COMPARISON,
            edited_response__edited_from__isnull=False,
        )
        return pairs + edits.count()
    rows = (
        Annotation.objects.filter(
            ANNOTATION_COUNTS, scope.where, project_id=project.pk, kind=Annotation.Kind.COMPARISON
        )
        .order_by("id")
        .values_list("ranking", "strength", "all_bad", "edited_response_id", "edited_response__edited_from_id")
    )
    count = 0
    for batch in row_batches(rows):
        made = [
            annotation_pairs(
                ranking=_parsed(ranking), strength=strength, all_bad=all_bad,
                edit=(edit, original) if edit is not None and original is not None else None, ties=scope.ties,
            )
            for ranking, strength, all_bad, edit, original in batch
        ]
        ids = {rid for pairs in made for better, worse, _ in pairs for rid in (better, worse)}
        existing = set(Response.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
        count += sum(1 for pairs in made for better, worse, _ in pairs if better in existing and worse in existing)
    return count


def _parsed(ranking):
    """A ranking as row_batches gives it (JSON text from PostgreSQL's driver, a list through the ORM) as a list."""
    return json.loads(ranking) if isinstance(ranking, str) else ranking
