"""The project's annotations for its admins and engineers: a filterable list and one task with all its labels.

The dashboard's drill-down: which labels a labeler gave, which comparisons labelers disagree on,
and, for one task, every label beside the responses it judged. Reads only; the list is paginated by
the page, so a big project costs one page of rows.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Count, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404

from .errors import InvalidInput
from .ids import as_id
from .models import ANNOTATION_COUNTS, Annotation, Project, Task
from .my_work import REVIEW_FILTERS, clean_filters, rows_for_page, shown_numbers
from .reviews.selectors import ranking_groups

__all__ = ["clean_browse_filters", "project_annotations", "browse_rows", "task_with_labels", "REVIEW_FILTERS"]


def _date(params, name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a date as YYYY-MM-DD.", field=name) from None


def clean_browse_filters(params) -> dict:
    """My work's filters (kind, review, q) plus labeler, disagreement and a date range; errors name the field."""
    filters = clean_filters(params)
    labeler = (params.get("labeler") or "").strip()
    if len(labeler) > 150:
        raise InvalidInput("labeler is a username of at most 150 characters.", field="labeler")
    disagreement = (params.get("disagreement") or "").strip()
    if disagreement not in ("", "1", "on", "true"):
        raise InvalidInput("disagreement is 1 or empty.", field="disagreement")
    since, until = _date(params, "since"), _date(params, "until")
    if since and until and since > until:
        raise InvalidInput("since must not be after until.", field="since")
    return {**filters, "labeler": labeler, "disagreement": bool(disagreement), "since": since, "until": until}


def disagreed_task_ids(*, project: Project) -> QuerySet:
    """Comparison tasks whose counting labels do not all put the same response(s) first."""
    return (
        Annotation.objects.filter(ANNOTATION_COUNTS, project=project, kind=Annotation.Kind.COMPARISON)
        .exclude(ranking=[])
        .annotate(top=KeyTextTransform("0", "ranking"))
        .values("task_id")
        .annotate(tops=Count("top", distinct=True))
        .filter(tops__gt=1)
        .values("task_id")
    )


def project_annotations(*, project: Project, kind: str = "", review: str = "", q: str = "", labeler: str = "",
                        disagreement: bool = False, since: date | None = None,
                        until: date | None = None) -> QuerySet[Annotation]:
    rows = Annotation.objects.filter(project=project)
    if kind:
        rows = rows.filter(kind=kind)
    if review == "unreviewed":
        rows = rows.filter(review_state="", review__isnull=True)
    elif review == "waiting":
        rows = rows.filter(review_state="", review__status="pending")
    elif review:
        rows = rows.filter(review_state=review)
    if labeler:
        rows = rows.filter(labeler__username=labeler)
    if disagreement:
        rows = rows.filter(task_id__in=disagreed_task_ids(project=project))
    if since:
        rows = rows.filter(created_at__date__gte=since)
    if until:
        rows = rows.filter(created_at__date__lte=until)
    if q:
        rows = rows.annotate(_prompt_text=Cast("task__prompt__messages", TextField())).filter(
            Q(_prompt_text__icontains=q) | Q(text__icontains=q) | Q(rationale__icontains=q) | Q(reason__icontains=q)
        )
    return rows.select_related("task__prompt", "review", "edited_response", "labeler").order_by("-created_at", "-id")


def labeler_name(annotation: Annotation) -> str:
    """Who gave the label: the labeler's username, or the external source an imported label came from."""
    if annotation.labeler_id is None:
        return f"{annotation.external_source} (imported)"
    return annotation.labeler.get_username()


def browse_rows(annotations: list[Annotation]) -> list[dict]:
    rows = rows_for_page(annotations)
    for row, annotation in zip(rows, annotations):
        row["labeler"] = labeler_name(annotation)
        row["gold"] = annotation.task.is_gold
    return rows


def task_with_labels(*, project: Project, task_id) -> dict:
    """One task of the project: its prompt, the responses as shown, and every label with its places."""
    pk = as_id(task_id)
    task = Task.objects.select_related("prompt").filter(pk=pk, project=project).first() if pk else None
    if task is None:
        raise Http404("No such task in this project.")
    numbers = shown_numbers([task.pk]).get(task.pk, {})
    responses = [
        {"id": link.response_id, "number": numbers.get(link.response_id), "text": link.response.text,
         "model": link.response.model_version.name if link.response.model_version_id else link.response.source}
        for link in task.task_responses.select_related("response__model_version").order_by("position")
    ]
    labels = []
    annotations = list(
        task.annotations.select_related("labeler", "review", "edited_response").order_by("created_at", "id")
    )
    for annotation, row in zip(annotations, rows_for_page(annotations)):
        places = {}
        for place, group in enumerate(ranking_groups(annotation.ranking), start=1):
            for response_id in group:
                places[response_id] = place
        labels.append({**row, "labeler": labeler_name(annotation), "places": places,
                       "counts": annotation.review_state not in ("rejected", "corrected")})
    for response in responses:
        response["places"] = [label["places"].get(response["id"]) for label in labels]
    return {"task": task, "responses": responses, "labels": labels, "gold": task.gold if task.is_gold else None}

