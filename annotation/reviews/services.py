"""Writes of the review queue: claim the next item, and store a reviewer's verdict.

Verdicts:
- accepted: the annotation stands.
- rejected (a comment is required): the annotation stops counting. The task's `done` goes down by
  one in the same transaction, under the task's row lock, and a task that had all it needed opens
  again, so the claim's rule (done + live leases < required) gives exactly one more labeler a
  slot. The labeler who was rejected has annotated the task, so it is never theirs again.
- corrected: the reviewer's fix is stored as the reviewer's own annotation of the task, linked to
  the original through the review item, and counts in place of the original, so `done` does not
  change. It is validated like any submit of that kind, and must differ from the original.
The `done` invariant: a task's `done` equals its stored annotations that are not skips and not
rejected or corrected (models.ANNOTATION_COUNTS).

A verdict is idempotent on the client's `client_id` (a retry or a second press returns the stored
review), and an item is decided once: its row lock orders concurrent verdicts, and the first wins.
Only the reviewer who holds, or last held, the item's lease may decide it; a lease that expired
still counts as long as no one else has taken the item over.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation import edits
from annotation.errors import Conflict, InvalidInput
from annotation.models import Annotation, Lease, Project, Response, ReviewItem, Task
from annotation.validation import MAX_RATIONALE_CHARS, clean_annotation_payload, clean_client_id

from . import claiming
from .selectors import ranking_groups

CLAIM_ATTEMPTS = 4
VERDICTS = tuple(v for v in Annotation.ReviewState.values if v)


def review_claim_next(*, project: Project, reviewer: AbstractBaseUser) -> ReviewItem | None:
    """The item the reviewer holds, or lease the next one they may review; None when none is waiting.

    The caller has checked the reviewer's role (roles.Action.REVIEW). See claiming.py for the
    statements. The item carries its annotation, task and prompt.
    """
    now = timezone.now()
    expires_at = now + timedelta(seconds=project.lease_seconds)
    with transaction.atomic():
        is_member, item_id, _ = claiming.held_review(project_id=project.pk, reviewer_id=reviewer.pk, now=now)
        if not is_member:
            raise InvalidInput("You are not a member of this project.", field="project")
        skipped: list[int] = []
        while item_id is None and len(skipped) < CLAIM_ATTEMPTS:
            candidate = claiming.candidate_review_id(
                project_id=project.pk, reviewer_id=reviewer.pk, now=now, skipped=skipped
            )
            if candidate is None:
                break
            if claiming.review_lease(item_id=candidate, reviewer_id=reviewer.pk, expires_at=expires_at, now=now):
                item_id = candidate
            else:
                skipped.append(candidate)
    if item_id is None:
        return None
    return ReviewItem.objects.select_related(
        "annotation__edited_response", "task__prompt", "project"
    ).get(pk=item_id)


def _clean_comment(comment, *, required: bool) -> str:
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise InvalidInput("comment must be a string.", field="comment")
    comment = comment.strip()
    if required and not comment:
        raise InvalidInput("A rejection needs a comment: tell the labeler what is wrong.", field="comment")
    if len(comment) > MAX_RATIONALE_CHARS:
        raise InvalidInput(f"comment is longer than {MAX_RATIONALE_CHARS} characters.", field="comment")
    return comment


def _clean_time(time_spent_ms) -> int:
    if not isinstance(time_spent_ms, int) or isinstance(time_spent_ms, bool) or time_spent_ms < 0:
        raise InvalidInput("time_spent_ms must be a non-negative integer.", field="time_spent_ms")
    return min(time_spent_ms, 2**31 - 1)


def _replay(*, item: ReviewItem, reviewer: AbstractBaseUser, item_id: int) -> tuple[ReviewItem, bool]:
    if item.pk != item_id or item.reviewer_id != reviewer.pk:
        raise Conflict("This client_id belongs to another review.", field="client_id")
    return item, False


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _same_judgement(original: Annotation, fields: dict) -> bool:
    if original.kind == Annotation.Kind.DEMONSTRATION:
        return _normalised(original.text) == _normalised(fields["text"])
    def as_sets(ranking) -> list[frozenset]:  # the order within a tie is no judgement
        return [frozenset(group) for group in ranking_groups(ranking)]

    return (
        as_sets(original.ranking) == as_sets(fields["ranking"])
        and (original.strength or "") == (fields["strength"] or "")
        and original.all_bad == fields["all_bad"]
        and original.flags == fields["flags"]
    )


def _correction_fields(*, task: Task, original: Annotation, correction) -> dict:
    """The correction, checked as a submit of the task's kind would be, and different from the original."""
    if not isinstance(correction, dict):
        raise InvalidInput(
            'correction must be an object: {"text": ...} for a demonstration, {"ranking": ...} for a comparison.',
            field="correction",
        )
    shown = list(task.task_responses.values_list("response_id", flat=True)) if task.kind == Task.Kind.COMPARISON else []
    try:
        fields = clean_annotation_payload(kind=task.kind, data=correction, shown_response_ids=shown)
    except InvalidInput as error:
        raise InvalidInput(error.message, field=f"correction.{error.field}" if error.field else "correction") from None
    if "edit" not in fields and _same_judgement(original, fields):
        raise InvalidInput("The correction is the same as the original: accept it instead.", field="correction")
    return fields


def _store_correction(*, task: Task, original: Annotation, reviewer: AbstractBaseUser, fields: dict,
                      time_spent_ms: int) -> Annotation:
    """The reviewer's annotation of the task (under the task's row lock, as a submit stores one)."""
    if Annotation.objects.filter(task=task, labeler=reviewer).exists():
        raise Conflict("You have annotated this task yourself, so you cannot correct it: accept or reject it.")
    if fields["kind"] == Annotation.Kind.DEMONSTRATION:
        fields["response"] = Response.objects.create(
            prompt_id=task.prompt_id, text=fields["text"], source=Response.Source.HUMAN, author=reviewer
        )
    edits.annotation_fields_complete(task=task, labeler=reviewer, fields=fields)  # an edit, reward-model agreement
    # A lease the reviewer held on the task as a labeler would only block a slot now.
    Lease.objects.filter(task=task, labeler=reviewer).delete()
    return Annotation.objects.create(
        task=task, project_id=task.project_id, labeler=reviewer, time_spent_ms=time_spent_ms, **fields
    )


def review_decide(
    *, item_id: int, reviewer: AbstractBaseUser, client_id, verdict, comment="", correction=None,
    time_spent_ms=0,
) -> tuple[ReviewItem, bool]:
    """Store the reviewer's verdict on the item; returns (item, created). Idempotent on client_id.

    The caller has checked that the reviewer may review the item's project.
    """
    client_uuid = clean_client_id(client_id)
    if verdict not in VERDICTS:
        raise InvalidInput(f"verdict must be one of {', '.join(VERDICTS)}.", field="verdict")
    comment = _clean_comment(comment, required=verdict == Annotation.ReviewState.REJECTED)
    time_spent_ms = _clean_time(time_spent_ms)
    if verdict != Annotation.ReviewState.CORRECTED and correction is not None:
        raise InvalidInput("Only a correction carries a correction.", field="correction")
    earlier = ReviewItem.objects.filter(client_id=client_uuid).first()
    if earlier is not None:
        return _replay(item=earlier, reviewer=reviewer, item_id=item_id)
    now = timezone.now()
    try:
        with transaction.atomic():
            item = ReviewItem.objects.select_for_update().get(pk=item_id)
            if item.client_id == client_uuid:  # a twin committed while we waited for the lock
                return _replay(item=item, reviewer=reviewer, item_id=item_id)
            if item.status == ReviewItem.Status.DECIDED:
                raise Conflict("This annotation has been reviewed already.")
            if item.labeler_id == reviewer.pk:
                raise Conflict("You cannot review your own work.")
            if item.leased_by_id != reviewer.pk:
                raise Conflict(
                    "Claim this review first: you hold no lease on it." if item.leased_by_id is None
                    else "Another reviewer holds this review now (an expired lease is taken over): claim the next one."
                )
            original = Annotation.objects.select_for_update().get(pk=item.annotation_id)
            if verdict != Annotation.ReviewState.ACCEPTED:
                task = Task.objects.select_for_update().get(pk=item.task_id)
            if verdict == Annotation.ReviewState.CORRECTED:
                fields = _correction_fields(task=task, original=original, correction=correction)
                item.correction = _store_correction(
                    task=task, original=original, reviewer=reviewer, fields=fields, time_spent_ms=time_spent_ms
                )
            elif verdict == Annotation.ReviewState.REJECTED:
                # The annotation no longer counts: one slot opens (done + live leases < required).
                task.done = max(0, task.done - 1)
                if task.done < task.required:
                    task.status = Task.Status.OPEN
                task.save(update_fields=["done", "status", "updated_at"])
            original.review_state = verdict
            original.save(update_fields=["review_state", "updated_at"])
            item.status = ReviewItem.Status.DECIDED
            item.verdict = verdict
            item.comment = comment
            item.reviewer = reviewer
            item.client_id = client_uuid
            item.time_spent_ms = time_spent_ms
            item.decided_at = now
            item.leased_by = None
            item.lease_expires_at = None
            item.save()
            return item, True
    except ReviewItem.DoesNotExist:
        raise InvalidInput("No such review.", field="review") from None
    except IntegrityError:
        # A concurrent twin with the same client_id won the race: return what it stored.
        twin = ReviewItem.objects.filter(client_id=client_uuid).first()
        if twin is None:
            raise
        return _replay(item=twin, reviewer=reviewer, item_id=item_id)
