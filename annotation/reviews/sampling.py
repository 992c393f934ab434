"""What gets reviewed: a share of each labeler's work, drawn at submit, plus every flagged annotation.

The draw. A labeler's reviewable annotations in a project (demonstrations and comparisons; skips
are never reviewed) are numbered 1, 2, 3, ... in the order they are stored: ReviewTally counts
them with one atomic upsert inside the submit's transaction. The positions come in blocks of
BLOCK. Block b (counting from 0) gets exactly

    quota(b) = floor((b + 1) * BLOCK * rate) - floor(b * BLOCK * rate)

draws, so after k full blocks exactly floor(k * BLOCK * rate) of the labeler's annotations are in
review, whatever their pace: the slowest labeler gets the same share as the fastest. Which
positions of a block are drawn is decided by an HMAC keyed with SECRET_KEY over (project,
labeler, block, position): the block's positions are ordered by it and the first quota(b) are
drawn. The draw is deterministic, but a labeler cannot tell which of their next annotations will
be checked. The rate is read at each submit, in steps of 1/RATE_STEPS (integer arithmetic, no
rounding drift); changing it applies from the next annotation on.

Flagged work comes from elsewhere (the reliability checks): `review_items_enqueue` queues
annotations by id with the reason, ahead of the sample.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction

from annotation.errors import InvalidInput
from annotation.ids import as_id
from annotation.models import Annotation, ReviewItem, ReviewTally
from annotation.sql.run import execute

BLOCK = 20
RATE_STEPS = 10_000
# The project setting's bounds: the form, the API's serializer and the service read them here.
REVIEW_RATE_MIN, REVIEW_RATE_MAX = 0.0, 1.0
REVIEW_RATE_HELP = (
    "Share of each labeler's annotations sent to review, from 0 (none) to 1 (all); flagged work always is."
)
SAMPLE_REASON = "sample"
SAMPLE_PRIORITY = 0
FLAGGED_PRIORITY = 1  # flagged work is claimed before the sample
MAX_REASON_CHARS = ReviewItem._meta.get_field("reason").max_length
ENQUEUE_CHUNK = 1000

_TALLY = ReviewTally._meta.db_table
# One statement: count the labeler's annotation and learn its position. The row lock it takes
# orders one labeler's concurrent submits, so no two get the same position.
_TALLY_NEXT = f"""
INSERT INTO {_TALLY} (project_id, labeler_id, submitted) VALUES (%s, %s, 1)
ON CONFLICT (project_id, labeler_id) DO UPDATE SET submitted = {_TALLY}.submitted + 1
RETURNING submitted
"""


def clean_review_rate(value) -> float:
    """A project's review rate: a number from REVIEW_RATE_MIN to REVIEW_RATE_MAX (NaN and infinities are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput("review_rate must be a number from 0 to 1.", field="review_rate")
    value = float(value)
    if not REVIEW_RATE_MIN <= value <= REVIEW_RATE_MAX:  # also false for NaN
        raise InvalidInput(
            f"review_rate must be from {REVIEW_RATE_MIN:g} to {REVIEW_RATE_MAX:g}, not {value:g}.", field="review_rate"
        )
    return value


def rate_steps(rate: float) -> int:
    """The rate as a whole number of 1/RATE_STEPS steps, within 0..RATE_STEPS."""
    return max(0, min(RATE_STEPS, round(rate * RATE_STEPS)))


def block_quota(*, block: int, rate: float) -> int:
    """How many of the positions of block `block` (from 0) are drawn."""
    steps = rate_steps(rate)
    return ((block + 1) * BLOCK * steps) // RATE_STEPS - (block * BLOCK * steps) // RATE_STEPS


def _draw_key(*, project_id: int, labeler_id: int) -> bytes:
    secret = settings.SECRET_KEY.encode("utf-8")
    return hmac.new(secret, f"feedbackloop-review-draw:{project_id}:{labeler_id}".encode(), hashlib.sha256).digest()


def is_drawn(*, project_id: int, labeler_id: int, position: int, rate: float) -> bool:
    """Whether the labeler's `position`-th reviewable annotation (from 1) in the project goes to review."""
    if position < 1:
        return False
    block, offset = divmod(position - 1, BLOCK)
    quota = block_quota(block=block, rate=rate)
    if quota <= 0:
        return False
    if quota >= BLOCK:
        return True
    key = _draw_key(project_id=project_id, labeler_id=labeler_id)
    order = sorted(range(BLOCK), key=lambda j: hmac.new(key, f"{block}:{j}".encode(), hashlib.sha256).digest())
    return offset in order[:quota]


def annotation_sample_for_review(*, annotation: Annotation, review_rate: float) -> ReviewItem | None:
    """Inside the submit's transaction: count the annotation and queue it if the draw picks it.

    Costs nothing when the project reviews nothing (rate 0), and skips are never counted.
    """
    if review_rate <= 0 or annotation.kind == Annotation.Kind.SKIP:
        return None
    with connection.cursor() as cursor:
        execute(cursor, _TALLY_NEXT, [annotation.project_id, annotation.labeler_id],
                name="review_tally_next", types=("bigint", "integer"))
        position = cursor.fetchone()[0]
    if not is_drawn(project_id=annotation.project_id, labeler_id=annotation.labeler_id, position=position,
                    rate=review_rate):
        return None
    return ReviewItem.objects.create(
        project_id=annotation.project_id, annotation=annotation, task_id=annotation.task_id,
        labeler_id=annotation.labeler_id, reason=SAMPLE_REASON, priority=SAMPLE_PRIORITY,
    )


def _clean_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("reason must say why the annotations are reviewed.", field="reason")
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"reason is longer than {MAX_REASON_CHARS} characters.", field="reason")
    return reason


def _clean_ids(annotation_ids) -> list[int]:
    if isinstance(annotation_ids, (str, bytes)) or not isinstance(annotation_ids, Iterable):
        raise InvalidInput("annotation_ids must be a list of annotation ids.", field="annotation_ids")
    ids = set()
    for value in annotation_ids:
        pk = as_id(value)
        if pk is None:
            raise InvalidInput(f"annotation_ids: {value!r} is not an annotation id.", field="annotation_ids")
        ids.add(pk)
    return sorted(ids)


def review_items_enqueue(*, annotation_ids: Iterable[int], reason: str) -> int:
    """Queue these annotations for review because of `reason`; returns how many were newly queued.

    For the checks that flag annotations. Idempotent: an annotation is queued and reviewed at most
    once, so calling again with the same ids queues nothing more. A flagged annotation that is
    already waiting as part of the sample takes the flag's reason and moves ahead of the sample.
    Skips are not reviewed, and ids of annotations that do not exist are passed over.
    Any project's annotations may be given: each item belongs to its annotation's project.
    """
    reason = _clean_reason(reason)
    ids = _clean_ids(annotation_ids)
    priority = SAMPLE_PRIORITY if reason == SAMPLE_REASON else FLAGGED_PRIORITY
    queued = 0
    for start in range(0, len(ids), ENQUEUE_CHUNK):
        chunk = ids[start:start + ENQUEUE_CHUNK]
        with transaction.atomic():
            there = set(ReviewItem.objects.filter(annotation_id__in=chunk).values_list("annotation_id", flat=True))
            rows = (
                Annotation.objects.filter(pk__in=[pk for pk in chunk if pk not in there])
                .exclude(kind=Annotation.Kind.SKIP)
                .order_by("pk")  # items queue in the order the work was done
                .values_list("pk", "project_id", "task_id", "labeler_id")
            )
            new = [
                ReviewItem(annotation_id=pk, project_id=project_id, task_id=task_id, labeler_id=labeler_id,
                           reason=reason, priority=priority)
                for pk, project_id, task_id, labeler_id in rows
            ]
            # A concurrent enqueue of the same annotation may win the race: its row stands.
            ReviewItem.objects.bulk_create(new, ignore_conflicts=True)
            queued += len(new)
            if priority > SAMPLE_PRIORITY and there:
                ReviewItem.objects.filter(
                    annotation_id__in=there, status=ReviewItem.Status.PENDING, priority__lt=priority
                ).update(reason=reason, priority=priority)
    return queued
