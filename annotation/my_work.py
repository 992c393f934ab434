"""A labeler's own past work in a project: the "My work" page and GET /api/projects/<id>/my-work/.

Only the caller's annotations, newest first, filtered by kind, review state and a search of the
prompt and their own text. Each row says what they answered, in the numbers the labeling page
shows (Response 1 is the first shown), and the reviewer's verdict and comment once there is one.
The draft of a row is what the labeling page restores after an undo.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from .errors import InvalidInput
from .models import Annotation, Project, ReviewItem, TaskResponse
from .reviews.selectors import prompt_excerpt, ranking_groups

KINDS = tuple(Annotation.Kind.values)
REVIEW_FILTERS = ("unreviewed", "waiting", "accepted", "rejected", "corrected")
SEARCH_MAX = 200


def clean_filters(params) -> dict:
    """kind, review and q from query parameters; a bad value is an InvalidInput naming it."""
    kind = (params.get("kind") or "").strip()
    if kind and kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}.", field="kind")
    review = (params.get("review") or "").strip()
    if review and review not in REVIEW_FILTERS:
        raise InvalidInput(f"review must be one of {', '.join(REVIEW_FILTERS)}.", field="review")
    q = (params.get("q") or "").strip()
    if len(q) > SEARCH_MAX:
        raise InvalidInput(f"q is at most {SEARCH_MAX} characters.", field="q")
    return {"kind": kind, "review": review, "q": q}


def my_annotations(*, labeler: AbstractBaseUser, project: Project, kind: str = "", review: str = "",
                   q: str = "") -> QuerySet[Annotation]:
    """The labeler's own annotations in the project (not their corrections as a reviewer), newest first."""
    rows = Annotation.objects.filter(project=project, labeler=labeler, corrected_review__isnull=True)
    if kind:
        rows = rows.filter(kind=kind)
    if review == "unreviewed":
        rows = rows.filter(review_state="", review__isnull=True)
    elif review == "waiting":
        rows = rows.filter(review_state="", review__status=ReviewItem.Status.PENDING)
    elif review:
        rows = rows.filter(review_state=review)
    if q:
        rows = rows.annotate(_prompt_text=Cast("task__prompt__messages", TextField())).filter(
            Q(_prompt_text__icontains=q) | Q(text__icontains=q) | Q(rationale__icontains=q) | Q(reason__icontains=q)
        )
    return rows.select_related("task__prompt", "review", "edited_response").order_by("-created_at", "-id")


def shown_numbers(task_ids: list[int]) -> dict[int, dict[int, int]]:
    """{task id: {response id: its number on the page (1-based)}} for a page of rows, in one query."""
    numbers: dict[int, dict[int, int]] = {}
    links = TaskResponse.objects.filter(task_id__in=task_ids).order_by("task_id", "position")
    for task_id, response_id in links.values_list("task_id", "response_id"):
        shown = numbers.setdefault(task_id, {})
        shown[response_id] = len(shown) + 1
    return numbers


def _answer(annotation: Annotation, numbers: dict[int, int]) -> str:
    if annotation.kind == Annotation.Kind.DEMONSTRATION:
        return annotation.text
    if annotation.kind == Annotation.Kind.SKIP:
        return f"Skipped: {annotation.reason}" if annotation.reason else "Skipped"
    if annotation.all_bad and not annotation.ranking:
        return "All responses bad"
    groups = [" = ".join(f"Response {numbers.get(rid, '?')}" for rid in group)
              for group in ranking_groups(annotation.ranking)]
    answer = " > ".join(groups)
    if annotation.strength and len(groups) == 2:
        answer += f" ({Annotation.Strength(annotation.strength).label.lower()})"
    if annotation.edited_response_id:
        answer += " · rewrote the best"
    return answer


def draft_of(annotation: Annotation, numbers: dict[int, int]) -> dict:
    """The annotation in the labeling page's draft format (static/js/labeling.js saveDraft)."""
    if annotation.kind == Annotation.Kind.DEMONSTRATION:
        return {"text": annotation.text}
    if annotation.kind != Annotation.Kind.COMPARISON:
        return {}
    groups = [[numbers[rid] for rid in group if rid in numbers] for group in ranking_groups(annotation.ranking)]
    groups = [g for g in groups if g]
    draft = {
        "groups": groups, "flags": annotation.flags or {}, "all_bad": annotation.all_bad,
        "rationale": annotation.rationale, "choice": None, "strength": annotation.strength or None,
        "edit": None,
    }
    if len(numbers) == 2 and groups:
        draft["choice"] = "tie" if len(groups) == 1 else str(groups[0][0])
    edit = annotation.edited_response
    if edit is not None and edit.edited_from_id in numbers:
        draft["edit"] = {"number": numbers[edit.edited_from_id], "text": edit.text}
    return draft


def rows_for_page(annotations: list[Annotation]) -> list[dict]:
    """The rows of one page: what each says, in the page's terms."""
    numbers = shown_numbers([a.task_id for a in annotations if a.kind == Annotation.Kind.COMPARISON])
    rows = []
    for a in annotations:
        review = getattr(a, "review", None)  # a missing reverse one-to-one raises an AttributeError
        verdict = a.review_state or ("waiting" if review is not None else "")
        rows.append({
            "id": a.pk,
            "task_id": a.task_id,
            "kind": a.kind,
            "created_at": a.created_at,
            "prompt": prompt_excerpt(a.task.prompt.messages),
            "answer": _answer(a, numbers.get(a.task_id, {})),
            "review": verdict,
            "comment": review.comment if review is not None and a.review_state else "",
            "time_spent_ms": a.time_spent_ms,
        })
    return rows
