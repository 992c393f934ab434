"""The review claim's SQL: a reviewer takes the next waiting item as a labeler takes a task.

The same shape as annotation/sql/claim.py, in one short transaction:
1. Lock the reviewer's membership row, so one reviewer's claims in a project (several tabs) run
   one at a time and hold one lease between them.
2. Resume: a live lease the reviewer holds on a waiting item is theirs again (a reload loses
   nothing).
3. Otherwise walk the partial index review_claim (waiting items of the project, flagged first,
   then oldest) and stop at the first item the reviewer may take, locking it with
   `FOR UPDATE SKIP LOCKED`, so concurrent reviewers pass over each other's rows instead of
   queueing on them. Items whose lease is live are passed over; so are items the reviewer may not
   judge: their own annotation, a task they annotated themselves (their correction would be a second
   annotation of it) and a comparison showing a response they wrote. The walk reads the rows before
   the first free one: the items other reviewers hold now, plus those this reviewer may not judge.
   The two NOT EXISTS checks are anti-joins, as in the labeler's claim: PostgreSQL probes the
   annotation and response indexes per row it reaches, or, when the reviewer's own annotations are
   few (a reviewer who does not label), reads those once. They stay NOT EXISTS on purpose: the
   planner estimates an anti-join's selectivity from statistics, so it keeps walking review_claim in
   order. (Written as scalar subqueries it guesses that almost no row passes and sorts every
   waiting item of the project instead; tests/annotation/test_review.py EXPLAINs it.)
4. Lease it. Under the row lock (PostgreSQL re-checks the candidate's conditions on the row's
   newest version as it locks it) the lease cannot be taken twice; the statement re-states the
   conditions anyway, for SQLite, which serialises writers instead of locking rows.
An expired lease counts for nothing; no reaper is needed. The same text runs on SQLite (the demo),
without the row locks.
"""

from datetime import datetime

from django.db import connection

from annotation.models import Annotation, Membership, Response, ReviewItem, TaskResponse
from annotation.sql.run import column_value, db_datetime, execute, on_postgres

_ITEMS = ReviewItem._meta.db_table
_PENDING = ReviewItem.Status.PENDING.value
_MEMBERS = Membership._meta.db_table
_ANNOTATIONS = Annotation._meta.db_table
_TASK_RESPONSES = TaskResponse._meta.db_table
_RESPONSES = Response._meta.db_table

# Also turns off waiting for fsync for this transaction, as the labeler claim does: a lease is
# cheap to lose in a crash (the item just frees up). Verdicts keep synchronous commits.
_LOCK_MEMBER = f"SELECT m.id {{sync}} FROM {_MEMBERS} m WHERE m.project_id = %s AND m.user_id = %s {{lock}}"

_HELD = f"""
SELECT ri.id, ri.lease_expires_at FROM {_ITEMS} ri
WHERE ri.leased_by_id = %s AND ri.project_id = %s AND ri.status = '{_PENDING}' AND ri.lease_expires_at > %s
ORDER BY ri.id LIMIT 1
"""

_CANDIDATE = f"""
SELECT ri.id FROM {_ITEMS} ri
WHERE ri.project_id = %s AND ri.status = '{_PENDING}' {{skipped}}
  AND (ri.lease_expires_at IS NULL OR ri.lease_expires_at <= %s)
  AND ri.labeler_id <> %s
  AND NOT EXISTS (SELECT 1 FROM {_ANNOTATIONS} a WHERE a.task_id = ri.task_id AND a.labeler_id = %s)
  AND NOT EXISTS (
    SELECT 1 FROM {_TASK_RESPONSES} tr JOIN {_RESPONSES} r ON r.id = tr.response_id
    WHERE tr.task_id = ri.task_id AND r.author_id = %s
  )
ORDER BY ri.priority DESC, ri.id ASC LIMIT 1 {{lock}}
"""

_LEASE = f"""
UPDATE {_ITEMS} SET leased_by_id = %s, lease_expires_at = %s, updated_at = %s
WHERE id = %s AND status = '{_PENDING}' AND (lease_expires_at IS NULL OR lease_expires_at <= %s)
"""


def held_review(*, project_id: int, reviewer_id: int, now: datetime) -> tuple[bool, int | None, datetime | None]:
    """Lock the membership; return (is_member, item id, lease expiry) of a live lease the reviewer holds."""
    postgres = on_postgres()
    with connection.cursor() as cursor:
        execute(
            cursor,
            _LOCK_MEMBER.format(sync=", set_config('synchronous_commit', 'off', true)" if postgres else "",
                                lock="FOR UPDATE" if postgres else ""),
            [project_id, reviewer_id], name="review_lock_member", types=("bigint", "integer"),
        )
        if cursor.fetchone() is None:
            return False, None, None
        execute(cursor, _HELD, [reviewer_id, project_id, db_datetime(now)], name="review_held",
                types=("integer", "bigint", "timestamptz"))
        row = cursor.fetchone()
    if row is None:
        return True, None, None
    return True, row[0], column_value(ReviewItem, "lease_expires_at", row[1])


def candidate_sql(*, skipped: int = 0) -> str:
    """The candidate statement as it runs here (EXPLAIN reads it too)."""
    return _CANDIDATE.format(
        skipped=f"AND ri.id NOT IN ({', '.join(['%s'] * skipped)})" if skipped else "",
        lock="FOR UPDATE OF ri SKIP LOCKED" if on_postgres() else "",
    )


def candidate_params(*, project_id: int, reviewer_id: int, now: datetime, skipped: list[int]) -> list:
    return [project_id] + skipped + [db_datetime(now), reviewer_id, reviewer_id, reviewer_id]


def candidate_review_id(*, project_id: int, reviewer_id: int, now: datetime, skipped: list[int]) -> int | None:
    """The first waiting item the reviewer may take, locked (PostgreSQL); None when there is none."""
    params = candidate_params(project_id=project_id, reviewer_id=reviewer_id, now=now, skipped=skipped)
    name = "" if skipped else "review_candidate"
    with connection.cursor() as cursor:
        execute(cursor, candidate_sql(skipped=len(skipped)), params, name=name,
                types=("bigint", "timestamptz", "integer", "integer", "integer"))
        row = cursor.fetchone()
    return row[0] if row else None


def review_lease(*, item_id: int, reviewer_id: int, expires_at: datetime, now: datetime) -> bool:
    """Lease the item to the reviewer if it is still waiting and free; whether it took."""
    params = [reviewer_id, db_datetime(expires_at), db_datetime(now), item_id, db_datetime(now)]
    with connection.cursor() as cursor:
        execute(cursor, _LEASE, params, name="review_lease",
                types=("integer", "timestamptz", "timestamptz", "bigint", "timestamptz"))
        return cursor.rowcount == 1
