"""Reads of the review queue: what a reviewer sees, the reviews a labeler gets, the dashboard's counts."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from annotation.ids import as_id
from annotation.models import Annotation, Project, ReviewItem, Task

MY_REVIEWS_ON_WORK_PAGE = 5
COUNTS = ("reviewed", "accepted", "rejected", "corrected", "waiting")  # the dashboard's columns


def review_item_get(*, item_id) -> ReviewItem:
    """The item with its project (for the role check that follows), or 404."""
    pk = as_id(item_id)
    item = ReviewItem.objects.select_related("project").filter(pk=pk).first() if pk is not None else None
    if item is None:
        raise Http404("No such review.")
    return item


def ranking_groups(ranking) -> list[list[int]]:
    """A stored ranking as groups (best first); a bare id, as older rows may hold, is a group of one."""
    return [group if isinstance(group, list) else [group] for group in ranking or []]


def _place(ranking: list[list[int]]) -> dict[int, dict]:
    """Each ranked response id's place (1 = best) and whether it shares it."""
    places = {}
    for index, group in enumerate(ranking):
        for response_id in group:
            places[response_id] = {"place": index + 1, "tied": len(group) > 1}
    return places


def review_payload(*, item: ReviewItem) -> dict:
    """What the reviewer sees: the task (prompt as a chat, responses in their display order) and the
    labeler's work on it (ranking, strength, flags, rationale, or the demonstration's text).

    The labeler is not named: the reviewer judges the work, not the person.
    """
    annotation, task = item.annotation, item.task
    responses = []
    if task.kind == Task.Kind.COMPARISON:
        places = _place(ranking_groups(annotation.ranking))
        for link in task.task_responses.select_related("response").order_by("position"):
            placed = places.get(link.response_id)
            responses.append({
                "id": link.response_id,
                "text": link.response.text,
                "place": placed["place"] if placed else None,
                "tied": placed["tied"] if placed else False,
                "flags": annotation.flags.get(str(link.response_id), []),
            })
    edit = annotation.edited_response
    return {
        "id": item.pk,
        "project": item.project_id,
        "reason": item.reason,
        "lease_expires_at": item.lease_expires_at.isoformat() if item.lease_expires_at else None,
        "task": {"id": task.pk, "kind": task.kind, "messages": task.prompt.messages, "responses": responses},
        "annotation": {
            "id": annotation.pk,
            "kind": annotation.kind,
            "text": annotation.text,
            "ranking": ranking_groups(annotation.ranking),
            "strength": annotation.strength,
            "flags": annotation.flags,
            "all_bad": annotation.all_bad,
            "rationale": annotation.rationale,
            "edit": {"response_id": edit.edited_from_id, "text": edit.text} if edit is not None else None,
            "time_spent_ms": annotation.time_spent_ms,
            "created_at": annotation.created_at.isoformat(),
        },
    }


def reviews_of_labeler(*, labeler: AbstractBaseUser, project: Project) -> QuerySet[ReviewItem]:
    """The decided reviews of the labeler's work in the project, newest first (index review_of_labeler)."""
    return (
        ReviewItem.objects.filter(labeler=labeler, project=project, status=ReviewItem.Status.DECIDED)
        .select_related("task__prompt")
        .order_by("-decided_at", "-id")
    )


def prompt_excerpt(messages, limit: int = 120) -> str:
    """The last user turn of a chat, shortened, to name a task in a list."""
    turns = [m.get("content", "") for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
    text = " ".join(str(turns[-1] if turns else "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def review_counts(*, project: Project) -> dict:
    """Per labeler whose work is queued: reviewed, accepted, rejected, corrected and waiting; and totals.

    One GROUP BY over the project's review items (index review_project_labeler).
    """
    decided = Q(status=ReviewItem.Status.DECIDED)
    rows = (
        ReviewItem.objects.filter(project=project)
        .values("labeler_id", "labeler__username")
        .annotate(
            reviewed=Count("id", filter=decided),
            accepted=Count("id", filter=Q(verdict=Annotation.ReviewState.ACCEPTED)),
            rejected=Count("id", filter=Q(verdict=Annotation.ReviewState.REJECTED)),
            corrected=Count("id", filter=Q(verdict=Annotation.ReviewState.CORRECTED)),
            waiting=Count("id", filter=Q(status=ReviewItem.Status.PENDING)),
        )
        .order_by("labeler__username")
    )
    labelers = [
        {
            "labeler_id": row["labeler_id"],
            "username": row["labeler__username"],
            **{key: row[key] for key in COUNTS},
        }
        for row in rows
    ]
    totals = {key: sum(row[key] for row in labelers) for key in COUNTS}
    return {"labelers": labelers, "totals": totals, "rate": project.review_rate}
