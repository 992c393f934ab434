"""Streamed exports in the formats TRL loads directly. See DESIGN.md "Formats".

- sft: one line per demonstration,
  {"messages": [...prompt, {"role": "assistant", "content": demonstration}]}
- preference: one line per ordered pair of a comparison's ranking (best first; a group of
  several responses is a tie),
  {"prompt": [...], "chosen": [{"role": "assistant", ...}], "rejected": [...], "margin": float}.
  A ranking of K expands into its K-choose-2 pairs; tied responses give no pair, and neither
  does an "all bad" comparison. The margin of a pair of two responses comes from the labeler's
  strength (validation.STRENGTH_MARGIN). With more than two responses it is RANK_GAP_MARGIN per
  rank between the two groups, capped at MAX_MARGIN: first vs second 0.25, first vs third 0.5.
- raw: every annotation, skips included, with a pseudonymous labeler id.

Only annotations that count are exported (models.ANNOTATION_COUNTS): a rejected annotation is
left out, and a corrected one gives way to its correction, the reviewer's own annotation.

A comparison may carry the labeler's edit of the best response (annotation.edits): the edit is a
demonstration in `sft` (after the demonstrations' rows, in the same annotation id order), a pair
of the edit chosen over the original with margin EDIT_MARGIN in `preference` (after the
ranking's pairs), and {"response_id", "text"} under "edit" in `raw` (null when there is none).

Lines come out in annotation id order (pairs in ranking order, ids ascending within a group),
so two exports of the same data are byte-identical. Rows are read with .iterator() a chunk at
a time, and each chunk's response texts come in one query: memory does not grow with the project.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from django.conf import settings
from django.db.models import Q

from .errors import InvalidInput
from .models import ANNOTATION_COUNTS, Annotation, Project, Response, TaskResponse
from .validation import STRENGTH_MARGIN

FORMATS = ("sft", "preference", "raw")
CHUNK_SIZE = 500
RANK_GAP_MARGIN = 0.25
MAX_MARGIN = 1.0
PSEUDONYM_CHARS = 16
EDIT_MARGIN = 1.0


def export_lines(*, project: Project, fmt: str) -> Iterator[str]:
    """JSON lines (each ending in a newline) of the project's annotations in the format `fmt`.

    The format is checked now, before any line is made, so a bad one is a 400 and not a broken
    stream. The lines themselves are made as the caller iterates.
    """
    writers: dict[str, Callable[..., Iterator[str]]] = {"sft": _sft, "preference": _preference, "raw": _raw}
    if fmt not in writers:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", field="format")
    return writers[fmt](project=project)


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def _chunks(rows: Iterable, size: int = CHUNK_SIZE) -> Iterator[list]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _annotations(*, project: Project, kinds: tuple[str, ...] = (), where: Q | None = None):
    where = where if where is not None else Q(kind__in=kinds)
    return (
        Annotation.objects.filter(where, ANNOTATION_COUNTS, task__project=project)
        .select_related("task__prompt", "edited_response")
        .order_by("id")
        .iterator(chunk_size=CHUNK_SIZE)
    )


# sft -------------------------------------------------------------------------------------------


def _sft(*, project: Project) -> Iterator[str]:
    demos_and_edits = Q(kind=Annotation.Kind.DEMONSTRATION) | Q(
        kind=Annotation.Kind.COMPARISON, edited_response__isnull=False
    )
    for annotation in _annotations(project=project, where=demos_and_edits):
        messages = list(annotation.task.prompt.messages)
        if annotation.kind == Annotation.Kind.DEMONSTRATION:
            text = annotation.text
        else:
            text = annotation.edited_response.text
        yield _line({"messages": messages + [{"role": "assistant", "content": text}]})


# preference ------------------------------------------------------------------------------------


def ranking_pairs(*, ranking: list[list[int]], strength: str = "") -> list[tuple[int, int, float]]:
    """(better id, worse id, margin) for each ordered pair of a ranking; ties give no pair."""
    groups = [sorted(group) for group in ranking if group]
    total = sum(len(group) for group in groups)
    pairs = []
    for i, better_group in enumerate(groups):
        for j in range(i + 1, len(groups)):
            if total == 2 and strength in STRENGTH_MARGIN:
                margin = STRENGTH_MARGIN[strength]
            else:
                margin = min(MAX_MARGIN, RANK_GAP_MARGIN * (j - i))
            pairs.extend((better, worse, float(margin)) for better in better_group for worse in groups[j])
    return pairs


def _has_pairs(annotation: Annotation) -> bool:
    return not annotation.all_bad and len(annotation.ranking) > 1


def _edit_pair(annotation: Annotation) -> tuple[int, int] | None:
    """(edit id, original id) when the comparison carries an edit whose original still exists."""
    edit = annotation.edited_response
    if edit is None or edit.edited_from_id is None:
        return None
    return edit.pk, edit.edited_from_id


def _preference(*, project: Project) -> Iterator[str]:
    comparisons = _annotations(project=project, kinds=(Annotation.Kind.COMPARISON,))
    for chunk in _chunks(comparisons):
        chunk = [a for a in chunk if _has_pairs(a) or _edit_pair(a)]
        ids = {rid for a in chunk if _has_pairs(a) for group in a.ranking for rid in group}
        ids |= {rid for a in chunk if _edit_pair(a) for rid in _edit_pair(a)}
        texts = dict(Response.objects.filter(pk__in=ids).values_list("pk", "text")) if ids else {}
        for annotation in chunk:
            prompt = annotation.task.prompt.messages
            pairs = ranking_pairs(ranking=annotation.ranking, strength=annotation.strength) if _has_pairs(annotation) else []
            if _edit_pair(annotation):
                pairs.append((*_edit_pair(annotation), EDIT_MARGIN))
            for better, worse, margin in pairs:
                if better not in texts or worse not in texts:
                    continue  # a response deleted since: the pair cannot be rebuilt
                yield _line(
                    {
                        "prompt": prompt,
                        "chosen": [{"role": "assistant", "content": texts[better]}],
                        "rejected": [{"role": "assistant", "content": texts[worse]}],
                        "margin": margin,
                    }
                )


# raw -------------------------------------------------------------------------------------------


def labeler_pseudonym(user_id: int) -> str:
    """A stable id for a labeler that does not reveal who they are (an HMAC keyed by SECRET_KEY)."""
    key = settings.SECRET_KEY.encode("utf-8")
    digest = hmac.new(key, f"feedbackloop-labeler:{user_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_CHARS]


def _raw(*, project: Project) -> Iterator[str]:
    pseudonyms: dict[int, str] = {}
    annotations = _annotations(project=project, kinds=tuple(Annotation.Kind.values))
    for chunk in _chunks(annotations):
        comparison_tasks = {a.task_id for a in chunk if a.task.kind == "comparison"}
        shown: dict[int, list[dict]] = {}
        if comparison_tasks:
            links = (
                TaskResponse.objects.filter(task_id__in=comparison_tasks)
                .select_related("response")
                .order_by("task_id", "position")
            )
            for link in links:
                shown.setdefault(link.task_id, []).append({"id": link.response_id, "text": link.response.text})
        for a in chunk:
            if a.labeler_id not in pseudonyms:
                pseudonyms[a.labeler_id] = labeler_pseudonym(a.labeler_id)
            row = {
                "annotation_id": a.pk,
                "labeler": pseudonyms[a.labeler_id],
                "task_id": a.task_id,
                "task_kind": a.task.kind,
                "kind": a.kind,
                "prompt_id": a.task.prompt.external_id,
                "messages": a.task.prompt.messages,
                "created_at": a.created_at.isoformat(),
                "time_spent_ms": a.time_spent_ms,
                "lease_expired": a.lease_expired,
            }
            if a.kind == Annotation.Kind.DEMONSTRATION:
                row["text"] = a.text
            elif a.kind == Annotation.Kind.COMPARISON:
                row.update(
                    {
                        "responses": shown.get(a.task_id, []),
                        "ranking": a.ranking,
                        "strength": a.strength,
                        "flags": a.flags,
                        "all_bad": a.all_bad,
                        "rationale": a.rationale,
                        "edit": (
                            {"response_id": a.edited_response.edited_from_id, "text": a.edited_response.text}
                            if a.edited_response is not None
                            else None
                        ),
                    }
                )
            else:
                row["reason"] = a.reason
            yield _line(row)
