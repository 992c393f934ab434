"""The exports written plainly with the ORM: the reference the fast writers (export_fast.py) must match.

Production uses these for the consensus preference export (its pairs come from a Dawid-Skene fit
in Python, consensus.py, so SQL would not make it faster) and for the preference export with
tied pairs (an option a reward run reads once; the fast writers stay with the everyday formats).
The other writers stay as the readable statement of each format: the tests compare the fast
writers' output with theirs, byte for byte, on a fixture with every kind of row. They read rows
with .iterator() a chunk at a time, and each chunk's response texts in one query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice

from django.db.models import Exists, OuterRef, Q

from . import consensus
from .export_pairs import EDIT_MARGIN, annotation_pairs
from .export_scope import ExportScope, kept_annotations, labeler_pseudonym, sft_rows
from .models import Annotation, Project, Response, ReviewItem, Task, TaskResponse

CHUNK_SIZE = 500


def reference_lines(*, project: Project, fmt: str, scope: ExportScope) -> Iterator[str]:
    """The export's lines as the reference writers make them (the scope comes from export_scope.export_scope)."""
    return {"sft": _sft, "preference": _preference, "raw": _raw}[fmt](project=project, scope=scope)


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def _chunks(rows: Iterable, size: int = CHUNK_SIZE) -> Iterator[list]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _annotations(
    *, project: Project, scope: ExportScope, kinds: tuple[str, ...] = (), where: Q | None = None,
    annotate: dict | None = None,
):
    where = where if where is not None else Q(kind__in=kinds)
    return (
        kept_annotations(project=project, scope=scope, where=where)
        .annotate(**(annotate or {}))
        .select_related("task__prompt", "edited_response")
        .iterator(chunk_size=CHUNK_SIZE)
    )


def _sft(*, project: Project, scope: ExportScope) -> Iterator[str]:
    for annotation in _annotations(project=project, scope=scope, where=sft_rows()):
        messages = list(annotation.task.prompt.messages)
        if annotation.kind == Annotation.Kind.DEMONSTRATION:
            text = annotation.text
        else:
            text = annotation.edited_response.text
        yield _line({"messages": messages + [{"role": "assistant", "content": text}]})


def edit_pair(annotation: Annotation) -> tuple[int, int] | None:
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


def _preference(*, project: Project, scope: ExportScope) -> Iterator[str]:
    if scope.consensus:
        yield from consensus_lines(project=project, scope=scope)
        return
    comparisons = _annotations(project=project, scope=scope, kinds=(Annotation.Kind.COMPARISON,))
    for chunk in _chunks(comparisons):
        made = [
            (a, annotation_pairs(ranking=a.ranking, strength=a.strength, all_bad=a.all_bad, edit=edit_pair(a),
                                 ties=scope.ties))
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


def _edits_kept(*, project: Project, scope: ExportScope):
    """The kept comparisons that carry an edit, for the consensus export's edit pairs."""
    return _annotations(
        project=project, scope=scope,
        where=Q(kind=Annotation.Kind.COMPARISON, edited_response__edited_from__isnull=False),
    )


def consensus_lines(*, project: Project, scope: ExportScope) -> Iterator[str]:
    """One pair per comparison task (consensus.py), then each kept edit's pair, at full confidence."""

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
        texts = _texts({rid for a in chunk for rid in edit_pair(a)})
        for annotation in chunk:
            edit, original = edit_pair(annotation)
            if edit in texts and original in texts:
                yield _pair_line(
                    prompt=annotation.task.prompt.messages, chosen=texts[edit], rejected=texts[original], **edit_extra
                )


def review_state_name(*, is_correction: bool, review_state: str, review_pending: bool) -> str:
    """The review state as the raw export names it (see exporters.py's docstring)."""
    if is_correction:
        return "correction"
    if review_state == Annotation.ReviewState.ACCEPTED:
        return "accepted"
    return "pending" if review_pending else "unreviewed"


def review_flags() -> dict:
    """The two subqueries the raw export's review state needs, as annotations of an Annotation query."""
    return {
        "review_pending": Exists(
            ReviewItem.objects.filter(annotation_id=OuterRef("pk"), status=ReviewItem.Status.PENDING)
        ),
        "is_correction": Exists(ReviewItem.objects.filter(correction_id=OuterRef("pk"))),
    }


def _raw(*, project: Project, scope: ExportScope) -> Iterator[str]:
    pseudonyms: dict[int, str] = {}
    competence = scope.competence or {}
    annotations = _annotations(
        project=project, scope=scope, kinds=tuple(Annotation.Kind.values), annotate=review_flags()
    )
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
                "review_state": review_state_name(
                    is_correction=a.is_correction, review_state=a.review_state, review_pending=a.review_pending
                ),
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
