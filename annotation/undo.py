"""Undo: a labeler takes back their last submit in a project, for a few minutes.

What undo does, in one transaction under the task's row lock:
- the annotation goes, with what it made: a demonstration's human response, the rewrite of an
  edit, its pending review item and its quality flags;
- a submit (not a skip) gave the task one of its `done`, so `done` goes down by one and a full
  task opens again; a growth of dynamic overlap that the submit decided is taken back with it;
- the labeler gets a lease on the task at once, so the slot that opened is theirs: the claim's
  rule (done + live leases < required) keeps everyone else out. Their other live leases in the
  project (the task the page claimed after the submit) are released for others, so "next" serves
  the undone task first;
- on a gold task the labeler's gold record forgets the answer (answered, correct, a qualifying
  skip), so re-answering counts once.

What cannot be undone (409, with the reason):
- anything but the labeler's latest annotation in the project, or one older than UNDO_SECONDS;
- an annotation a reviewer has decided, or has claimed and is looking at;
- an annotation frozen into a dataset snapshot (made after it), which a run may train on;
- a demonstration or rewrite that another task already shows;
- a gold answer whose expected answer was shown (the project's training mode), or that a
  qualification decision counted.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from . import extension_points, my_work
from .sql import submit as submitting
from .errors import Conflict
from .models import Annotation, GoldRecord, Lease, Response, ReviewItem, Task, TaskResponse

DEFAULT_UNDO_SECONDS = 300


def undo_seconds() -> int:
    return int(getattr(settings, "UNDO_SECONDS", DEFAULT_UNDO_SECONDS))


def latest_annotation(*, project_id: int, labeler: AbstractBaseUser) -> Annotation | None:
    """The labeler's latest own submit in the project (a reviewer's correction is not a submit)."""
    return (
        Annotation.objects.filter(project_id=project_id, labeler=labeler, corrected_review__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )


def undo_refusal(*, annotation: Annotation, now=None) -> str:
    """Why the annotation cannot be undone now, or "" when it can. Reads; changes nothing."""
    now = now or timezone.now()
    if annotation.created_at < now - timedelta(seconds=undo_seconds()):
        minutes = max(1, round(undo_seconds() / 60))
        return f"Undo is possible for {minutes} minute{'s' if minutes != 1 else ''} after a submit."
    latest = latest_annotation(project_id=annotation.project_id, labeler=annotation.labeler)
    if latest is None or latest.pk != annotation.pk:
        return "Only your latest submit in this project can be undone."
    if annotation.review_state:
        return "A reviewer has already decided on this annotation."
    review = ReviewItem.objects.filter(annotation=annotation).first()
    if review is not None and (review.status != ReviewItem.Status.PENDING or _leased(review, now)):
        return "A reviewer is looking at this annotation."
    if extension_points.annotation_frozen(annotation=annotation):
        return "This annotation is already in a training snapshot."
    own = [pk for pk in (annotation.response_id, annotation.edited_response_id) if pk]
    if own and TaskResponse.objects.filter(response_id__in=own).exists():
        return "Your text is already shown to other labelers."
    task = annotation.task
    if task.is_gold:
        if task.project.gold_training_mode and annotation.gold_correct is not None:
            return "The expected answer was shown, so this answer stays."
        record = GoldRecord.objects.filter(project_id=task.project_id, labeler=annotation.labeler).first()
        if record is not None and record.decided_at is not None and record.decided_at >= annotation.created_at:
            return "Your qualification was decided with this answer."
    return ""


def undo_offer(*, project_id: int, labeler: AbstractBaseUser) -> dict | None:
    """The labeler's latest submit in the project while it can still be undone, for the pages' Undo bar."""
    if not labeler.is_authenticated:
        return None
    annotation = latest_annotation(project_id=project_id, labeler=labeler)
    if annotation is None:
        return None
    now = timezone.now()
    if undo_refusal(annotation=annotation, now=now):
        return None
    left = undo_seconds() - (now - annotation.created_at).total_seconds()
    return {"annotation_id": annotation.pk, "task_id": annotation.task_id, "kind": annotation.kind,
            "seconds_left": max(0, int(left))}


def _leased(review: ReviewItem, now) -> bool:
    return review.leased_by_id is not None and review.lease_expires_at is not None and review.lease_expires_at > now


def annotation_undo(*, annotation_id: int, labeler: AbstractBaseUser) -> tuple[Task, dict]:
    """Take back the labeler's annotation and lease its task to them again.

    Returns the task and the annotation as a draft of the labeling page, which restores it.

    404 is the caller's (the annotation must be the labeler's own); a refusal is a Conflict.
    """
    now = timezone.now()
    with transaction.atomic():
        annotation = (
            Annotation.objects.select_related("task__project", "labeler")
            .filter(pk=annotation_id, labeler=labeler).first()
        )
        if annotation is None:
            raise Conflict("That annotation is already gone.")
        task = submitting.task_locked(annotation.task_id)
        task.project = annotation.task.project
        # Re-read under the task's lock: a review verdict or a snapshot may have come in between.
        annotation = Annotation.objects.select_for_update().filter(pk=annotation.pk).first() or annotation
        annotation.task = task
        reason = undo_refusal(annotation=annotation, now=now)
        if reason:
            raise Conflict(reason, field="annotation")
        draft = my_work.draft_of(annotation, my_work.shown_numbers([task.pk]).get(task.pk, {}))
        _forget_gold_answer(annotation=annotation, task=task)
        made = [pk for pk in (annotation.response_id, annotation.edited_response_id) if pk]
        counted = annotation.kind != Annotation.Kind.SKIP
        annotation.delete()  # its review item and flags go with it (CASCADE)
        if made:
            Response.objects.filter(pk__in=made, author=labeler).delete()
        if counted:
            task.done = max(0, task.done - 1)
            task.required = _required_after_undo(task=task)
            if task.done < task.required:
                task.status = Task.Status.OPEN
            task.save(update_fields=["done", "required", "status", "updated_at"])
        Lease.objects.filter(project_id=task.project_id, labeler=labeler, expires_at__gt=now).exclude(
            task=task
        ).delete()
        Lease.objects.update_or_create(
            task=task, labeler=labeler,
            defaults={"project_id": task.project_id, "expires_at": now + timedelta(seconds=task.project.lease_seconds)},
        )
    return task, draft


def _required_after_undo(*, task: Task) -> int:
    """Take back the growth the undone label caused, so that the labeler's new answer decides it again.

    A dynamic-overlap task grows by one only on the submit that fills it, which leaves it one label
    short (done = required - 1). Two short after the undo means the growth was decided with the
    label that is now gone: the task goes back to the size it had, never below the project's overlap.
    """
    project = task.project
    grown = task.kind == Task.Kind.COMPARISON and not task.is_gold and project.dynamic_overlap
    if grown and task.required > project.overlap and task.done == task.required - 2:
        return task.required - 1
    return task.required


def _forget_gold_answer(*, annotation: Annotation, task: Task) -> None:
    if not task.is_gold:
        return
    record = GoldRecord.objects.select_for_update().filter(
        project_id=task.project_id, labeler_id=annotation.labeler_id
    ).first()
    if record is None:
        return
    fields = []
    if annotation.gold_correct is not None and record.gold_answered > 0:
        record.gold_answered -= 1
        fields.append("gold_answered")
        if annotation.gold_correct and record.gold_correct > 0:
            record.gold_correct -= 1
            fields.append("gold_correct")
    elif (
        annotation.kind == Annotation.Kind.SKIP
        and record.status == GoldRecord.Status.QUALIFYING
        and record.qualification_skips > 0
    ):
        record.qualification_skips -= 1
        fields.append("qualification_skips")
    if fields:
        record.save(update_fields=[*fields, "updated_at"])
