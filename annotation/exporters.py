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
- raw: every annotation, skips included, with a pseudonymous labeler id, the labeler's
  competence in the last quality report (`labeler_competence`, null when unknown) and the
  annotation's `review_state`: "unreviewed", "pending" (waiting in the review queue),
  "accepted", or "correction" (a reviewer's correction, which replaced a labeler's annotation).

Only annotations that count are exported (models.ANNOTATION_COUNTS): a rejected annotation is
left out, and a corrected one gives way to its correction, the reviewer's own annotation.
ExportFilters (export_filters.py) leave out more: gold tasks, unreviewed or flagged work, labelers
below a competence. With `consensus`, the preference export gives one pair per comparison task
(consensus.py) instead of every labeler's pairs. export_count says how many lines an export would
have without reading a text.

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
from dataclasses import dataclass
from itertools import islice

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from . import consensus
from .errors import InvalidInput
from .export_filters import ExportFilters
from .models import ANNOTATION_COUNTS, Annotation, Project, Response, ReviewItem, TaskResponse
from .reliability.store import labeler_competence
from .validation import STRENGTH_MARGIN

FORMATS = ("sft", "preference", "raw")
CHUNK_SIZE = 500
RANK_GAP_MARGIN = 0.25
MAX_MARGIN = 1.0
PSEUDONYM_CHARS = 16
EDIT_MARGIN = 1.0


def export_lines(*, project: Project, fmt: str, filters: ExportFilters | None = None) -> Iterator[str]:
    """JSON lines (each ending in a newline) of the project's annotations in the format `fmt`.

    The format and the filters are checked now, before any line is made, so a bad one is a 400
    and not a broken stream. The lines themselves are made as the caller iterates.
    """
    writers: dict[str, Callable[..., Iterator[str]]] = {"sft": _sft, "preference": _preference, "raw": _raw}
    scope = _scope(project=project, fmt=fmt, filters=filters)
    return writers[fmt](project=project, scope=scope)


def export_count(*, project: Project, fmt: str, filters: ExportFilters | None = None) -> int:
    """How many lines export_lines would give (pairs for preference), from ids alone: no text is read."""
    scope = _scope(project=project, fmt=fmt, filters=filters)
    if fmt == "preference":
        return _preference_count(project=project, scope=scope)
    where = _sft_rows() if fmt == "sft" else Q()
    return Annotation.objects.filter(where, ANNOTATION_COUNTS, scope.where, project=project).count()


@dataclass(frozen=True)
class _Scope:
    """The filters resolved against the project: one Q for the rows, the consensus mode, the competences read."""

    where: Q
    consensus: str
    competence: dict[int, float] | None  # by labeler id, from the last quality report (raw and min_competence)


def _scope(*, project: Project, fmt: str, filters: ExportFilters | None) -> _Scope:
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", field="format")
    filters = filters or ExportFilters()
    if filters.consensus and fmt != "preference":
        raise InvalidInput("consensus applies to the preference format only.", field="consensus")
    competence = labeler_competence(project_id=project.pk) if fmt == "raw" or filters.min_competence is not None else None
    where = filters.annotation_q()
    if filters.min_competence is not None:
        if competence is None:
            raise InvalidInput(
                "The project has no quality report yet, so no labeler's competence is known: "
                "compute it on the dashboard's quality section first.",
                field="min_competence",
            )
        below = sorted(labeler for labeler, value in competence.items() if value < filters.min_competence)
        if below:
            where &= ~Q(labeler_id__in=below)
    return _Scope(where=where, consensus=filters.consensus, competence=competence)


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def _chunks(rows: Iterable, size: int = CHUNK_SIZE) -> Iterator[list]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _annotations(
    *, project: Project, scope: _Scope, kinds: tuple[str, ...] = (), where: Q | None = None, annotate: dict | None = None
):
    where = where if where is not None else Q(kind__in=kinds)
    return (
        Annotation.objects.filter(where, ANNOTATION_COUNTS, scope.where, project=project)
        .annotate(**(annotate or {}))
        .select_related("task__prompt", "edited_response")
        .order_by("id")
        .iterator(chunk_size=CHUNK_SIZE)
    )


# sft -------------------------------------------------------------------------------------------


def _sft_rows() -> Q:
    return Q(kind=Annotation.Kind.DEMONSTRATION) | Q(kind=Annotation.Kind.COMPARISON, edited_response__isnull=False)


def _sft(*, project: Project, scope: _Scope) -> Iterator[str]:
    for annotation in _annotations(project=project, scope=scope, where=_sft_rows()):
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


def _annotation_pairs(*, ranking, strength: str, all_bad: bool, edit: tuple[int, int] | None) -> list:
    """(better id, worse id, margin) of one comparison: its ranking's pairs, then its edit's pair."""
    pairs = ranking_pairs(ranking=ranking, strength=strength) if not all_bad and len(ranking) > 1 else []
    if edit is not None:
        pairs.append((*edit, EDIT_MARGIN))
    return pairs


def _edit_pair(annotation: Annotation) -> tuple[int, int] | None:
    """(edit id, original id) when the comparison carries an edit whose original still exists."""
    edit = annotation.edited_response
    if edit is None or edit.edited_from_id is None:
        return None
    return edit.pk, edit.edited_from_id


def _texts(ids: set[int]) -> dict[int, str]:
    return dict(Response.objects.filter(pk__in=ids).values_list("pk", "text")) if ids else {}


def _pair_line(*, prompt, chosen: str, rejected: str, **extra) -> str:
    return _line(
        {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            **extra,
        }
    )


def _preference(*, project: Project, scope: _Scope) -> Iterator[str]:
    if scope.consensus:
        yield from _consensus(project=project, scope=scope)
        return
    comparisons = _annotations(project=project, scope=scope, kinds=(Annotation.Kind.COMPARISON,))
    for chunk in _chunks(comparisons):
        made = [
            (a, _annotation_pairs(ranking=a.ranking, strength=a.strength, all_bad=a.all_bad, edit=_edit_pair(a)))
            for a in chunk
        ]
        texts = _texts({rid for _, pairs in made for better, worse, _ in pairs for rid in (better, worse)})
        for annotation, pairs in made:
            for better, worse, margin in pairs:
                if better not in texts or worse not in texts:
                    continue  # a response deleted since: the pair cannot be rebuilt
                yield _pair_line(
                    prompt=annotation.task.prompt.messages, chosen=texts[better], rejected=texts[worse], margin=margin
                )


def _edits_kept(*, project: Project, scope: _Scope):
    """The kept comparisons that carry an edit, for the consensus export's edit pairs."""
    return _annotations(
        project=project, scope=scope, where=Q(kind=Annotation.Kind.COMPARISON, edited_response__edited_from__isnull=False)
    )


def _consensus(*, project: Project, scope: _Scope) -> Iterator[str]:
    """One pair per comparison task (consensus.py), then each kept edit's pair, at full confidence."""
    from .models import Task

    def extra(confidence: float) -> dict:
        if scope.consensus == "weight":
            return {"weight": round(confidence, 6)}
        return {"margin": consensus.confidence_margin(confidence)}

    found = consensus.consensus_pairs(project=project, where=scope.where)
    for chunk in _chunks(found):
        texts = _texts({rid for pair in chunk for rid in (pair.chosen_id, pair.rejected_id)})
        prompts = dict(Task.objects.filter(pk__in=[p.task_id for p in chunk]).values_list("pk", "prompt__messages"))
        for pair in chunk:
            if pair.chosen_id in texts and pair.rejected_id in texts:
                yield _pair_line(
                    prompt=prompts[pair.task_id], chosen=texts[pair.chosen_id], rejected=texts[pair.rejected_id],
                    **extra(pair.confidence),
                )
    edit_extra = {"weight": 1.0} if scope.consensus == "weight" else {"margin": EDIT_MARGIN}
    for chunk in _chunks(_edits_kept(project=project, scope=scope)):
        texts = _texts({rid for a in chunk for rid in _edit_pair(a)})
        for annotation in chunk:
            edit, original = _edit_pair(annotation)
            if edit in texts and original in texts:
                yield _pair_line(
                    prompt=annotation.task.prompt.messages, chosen=texts[edit], rejected=texts[original], **edit_extra
                )


def _preference_count(*, project: Project, scope: _Scope) -> int:
    if scope.consensus:
        pairs = len(consensus.consensus_pairs(project=project, where=scope.where))
        edits = Annotation.objects.filter(
            ANNOTATION_COUNTS, scope.where, project=project, kind=Annotation.Kind.COMPARISON,
            edited_response__edited_from__isnull=False,
        )
        return pairs + edits.count()
    rows = (
        Annotation.objects.filter(ANNOTATION_COUNTS, scope.where, project=project, kind=Annotation.Kind.COMPARISON)
        .order_by("id")
        .values_list("ranking", "strength", "all_bad", "edited_response_id", "edited_response__edited_from_id")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    count = 0
    for chunk in _chunks(rows):
        made = [
            _annotation_pairs(
                ranking=ranking, strength=strength, all_bad=all_bad,
                edit=(edit, original) if edit is not None and original is not None else None,
            )
            for ranking, strength, all_bad, edit, original in chunk
        ]
        ids = {rid for pairs in made for better, worse, _ in pairs for rid in (better, worse)}
        existing = set(Response.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
        count += sum(1 for pairs in made for better, worse, _ in pairs if better in existing and worse in existing)
    return count


# raw -------------------------------------------------------------------------------------------


def labeler_pseudonym(user_id: int) -> str:
    """A stable id for a labeler that does not reveal who they are (an HMAC keyed by SECRET_KEY)."""
    key = settings.SECRET_KEY.encode("utf-8")
    digest = hmac.new(key, f"feedbackloop-labeler:{user_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_CHARS]


def _review_state(annotation: Annotation) -> str:
    """The review state as the raw export names it (see the module's doc); the flags come from _raw's query."""
    if annotation.is_correction:
        return "correction"
    if annotation.review_state == Annotation.ReviewState.ACCEPTED:
        return "accepted"
    return "pending" if annotation.review_pending else "unreviewed"


def _raw(*, project: Project, scope: _Scope) -> Iterator[str]:
    pseudonyms: dict[int, str] = {}
    competence = scope.competence or {}
    review = {
        "review_pending": Exists(
            ReviewItem.objects.filter(annotation_id=OuterRef("pk"), status=ReviewItem.Status.PENDING)
        ),
        "is_correction": Exists(ReviewItem.objects.filter(correction_id=OuterRef("pk"))),
    }
    annotations = _annotations(project=project, scope=scope, kinds=tuple(Annotation.Kind.values), annotate=review)
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
                pseudonyms[a.labeler_id] = labeler_pseudonym(a.labeler_id) if a.labeler_id is not None else None
            row = {
                "annotation_id": a.pk,
                "labeler": pseudonyms[a.labeler_id],
                "external_source": a.external_source or None,  # an imported label's source; it has no labeler
                "labeler_competence": competence.get(a.labeler_id),
                "review_state": _review_state(a),
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
