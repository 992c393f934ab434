"""The claim's SQL: the hot path of the labeler API, a few index lookups in one short transaction.

Plain SQL, not the ORM, because the claim runs on every "next" and the ORM spent as long building
these statements as PostgreSQL spent running them. The same text runs on PostgreSQL (with row
locks) and on SQLite (which serialises writers, so it needs none).
"""

from datetime import datetime
from typing import NamedTuple

from django.db import connection

from .models import Lease, Prompt, Task
from .queries import column_value, columns, db_datetime, execute, fetch_one, load, on_postgres

# The labeler's membership row, locked so that one labeler's claims in a project run one at a
# time. The held lease is read by the next, separate statement: one that waited for this lock
# must see the lease that the claim before it committed. On PostgreSQL the same statement turns
# off waiting for fsync for this transaction (SET LOCAL, without a round trip of its own): a lease
# is cheap to lose in a crash, the task just frees up. Submits keep synchronous commits.
_LOCK_MEMBER = """
SELECT m.id {sync} FROM annotation_membership m WHERE m.project_id = %s AND m.user_id = %s {lock}
"""
# The same lock in a project that serves gold tasks, with the labeler's gold record beside it: one
# more probe, of the record's unique (project, labeler) index, and no extra round trip.
_LOCK_MEMBER_GOLD = """
SELECT m.id, g.status, g.gold_served, g.gold_answered, g.gold_correct, g.qualification_skips {sync}
FROM annotation_membership m
LEFT JOIN annotation_goldrecord g ON g.project_id = m.project_id AND g.labeler_id = m.user_id
WHERE m.project_id = %s AND m.user_id = %s {lock}
"""

# The task of a live lease the labeler already holds in the project (resume after a reload).
_HELD = """
SELECT l.task_id, l.expires_at FROM annotation_lease l JOIN annotation_task t ON t.id = l.task_id
WHERE l.labeler_id = %s AND l.project_id = %s AND l.expires_at > %s {kind}
ORDER BY l.created_at LIMIT 1
"""

# The best open task with room that this labeler has neither done nor written a response of.
# It walks the partial index task_claim_any / task_claim_kind in order and stops at the first hit.
# Gold tasks are not in those indexes (NOT t.is_gold matches their condition): they have a walk of
# their own, _GOLD_CANDIDATE.
_CANDIDATE = """
SELECT t.id FROM annotation_task t
WHERE t.project_id = %s AND t.status = 'open' AND NOT t.is_gold {kind} {skipped}
  AND t.done + (SELECT COUNT(*) FROM annotation_lease l WHERE l.task_id = t.id AND l.expires_at > %s) < t.required
  AND NOT EXISTS (SELECT 1 FROM annotation_annotation a WHERE a.task_id = t.id AND a.labeler_id = %s)
  AND NOT EXISTS (
    SELECT 1 FROM annotation_taskresponse tr JOIN annotation_response r ON r.id = tr.response_id
    WHERE tr.task_id = t.id AND r.author_id = %s
  )
ORDER BY t.priority DESC, t.id ASC LIMIT 1 {lock}
"""

# Lease the task only if it still has room. This is a new statement, so on PostgreSQL it sees
# every lease committed since the candidate read, which SKIP LOCKED may have missed. An expired
# lease of the same labeler on the task is renewed in place.
_LEASE = """
INSERT INTO annotation_lease (task_id, labeler_id, project_id, expires_at, created_at)
SELECT t.id, %s, t.project_id, %s, %s FROM annotation_task t
WHERE t.id = %s AND t.done + (
    SELECT COUNT(*) FROM annotation_lease l WHERE l.task_id = t.id AND l.expires_at > %s AND l.labeler_id <> %s
) < t.required
ON CONFLICT (task_id, labeler_id) DO UPDATE SET expires_at = excluded.expires_at
"""


class GoldState(NamedTuple):
    """The labeler's gold record as the claim reads it (None where the labeler has none yet)."""

    status: str
    gold_served: int
    gold_answered: int
    gold_correct: int
    qualification_skips: int


def held_lease(
    *, project_id: int, labeler_id: int, kind: str | None, now: datetime
) -> tuple[bool, int | None, datetime | None]:
    """Lock the membership; return (is_member, task id, expiry) of a live lease held in the project."""
    is_member, task_id, expires_at, _ = _held(project_id=project_id, labeler_id=labeler_id, kind=kind, now=now)
    return is_member, task_id, expires_at


def held_lease_and_gold(
    *, project_id: int, labeler_id: int, kind: str | None, now: datetime
) -> tuple[bool, int | None, datetime | None, GoldState | None]:
    """held_lease, plus the labeler's gold record read by the same locking statement."""
    return _held(project_id=project_id, labeler_id=labeler_id, kind=kind, now=now, gold=True)


def _held(*, project_id: int, labeler_id: int, kind: str | None, now: datetime, gold: bool = False):
    postgres = on_postgres()
    sql = _LOCK_MEMBER_GOLD if gold else _LOCK_MEMBER
    with connection.cursor() as cursor:
        execute(
            cursor,
            sql.format(sync=", set_config('synchronous_commit', 'off', true)" if postgres else "",
                       lock=("FOR UPDATE OF m" if gold else "FOR UPDATE") if postgres else ""),
            [project_id, labeler_id], name="claim_lock_member_gold" if gold else "claim_lock_member",
            types=("bigint", "integer"),
        )
        member = cursor.fetchone()
        if member is None:
            return False, None, None, None
        record = GoldState(*member[1:6]) if gold and member[1] is not None else None
        execute(
            cursor, _HELD.format(kind="AND t.kind = %s" if kind else ""),
            [labeler_id, project_id, db_datetime(now)] + ([kind] if kind else []),
            name="claim_held_kind" if kind else "claim_held",
            types=("integer", "bigint", "timestamptz") + (("text",) if kind else ()),
        )
        row = cursor.fetchone()
    if row is None:
        return True, None, None, record
    return True, row[0], column_value(Lease, "expires_at", row[1]), record


def candidate_task_id(
    *, project_id: int, labeler_id: int, kind: str | None, now: datetime, skipped: list[int]
) -> int | None:
    sql = _CANDIDATE.format(
        kind="AND t.kind = %s" if kind else "",
        skipped=f"AND t.id NOT IN ({', '.join(['%s'] * len(skipped))})" if skipped else "",
        lock="FOR UPDATE OF t SKIP LOCKED" if on_postgres() else "",
    )
    params = [project_id] + ([kind] if kind else []) + skipped + [db_datetime(now), labeler_id, labeler_id]
    name = "" if skipped else ("claim_candidate_kind" if kind else "claim_candidate")
    types = ("bigint",) + (("text",) if kind else ()) + ("timestamptz", "integer", "integer")
    with connection.cursor() as cursor:
        execute(cursor, sql, params, name=name, types=types)
        row = cursor.fetchone()
    return row[0] if row else None


def lease_if_room(*, task_id: int, labeler_id: int, expires_at: datetime, now: datetime) -> bool:
    params = [labeler_id, db_datetime(expires_at), db_datetime(now), task_id, db_datetime(now), labeler_id]
    types = ("integer", "timestamptz", "timestamptz", "bigint", "timestamptz", "integer")
    with connection.cursor() as cursor:
        execute(cursor, _LEASE, params, name="claim_lease", types=types)
        return cursor.rowcount == 1


# Gold tasks ------------------------------------------------------------------------------------

# The labeler's next gold task: the first, in the claim's order, that they have never been served
# (no lease of theirs, live or expired) nor annotated or skipped, and that shows no response of
# theirs. It walks the partial index task_gold_any / task_gold_kind, so its cost grows with the
# gold tasks this labeler has done, never with the project. There is no capacity to check (a gold
# task never fills up) and so no row to lock: the membership lock already runs this labeler's
# claims one at a time, which is what "at most once" needs.
_GOLD_CANDIDATE = """
SELECT t.id FROM annotation_task t
WHERE t.project_id = %s AND t.is_gold {kind}
  AND NOT EXISTS (SELECT 1 FROM annotation_annotation a WHERE a.task_id = t.id AND a.labeler_id = %s)
  AND NOT EXISTS (SELECT 1 FROM annotation_lease l WHERE l.task_id = t.id AND l.labeler_id = %s)
  AND NOT EXISTS (
    SELECT 1 FROM annotation_taskresponse tr JOIN annotation_response r ON r.id = tr.response_id
    WHERE tr.task_id = t.id AND r.author_id = %s
  )
ORDER BY t.priority DESC, t.id ASC LIMIT 1
"""

_LEASE_GOLD = """
INSERT INTO annotation_lease (task_id, labeler_id, project_id, expires_at, created_at) VALUES (%s, %s, %s, %s, %s)
"""

# One more gold task served: the count is part of the next claim's draw (gold.gold_draw). The
# record is made on the labeler's first gold task.
_GOLD_SERVED = """
INSERT INTO annotation_goldrecord (project_id, labeler_id, status, gold_served, gold_answered, gold_correct,
                                   qualification_skips, created_at, updated_at)
VALUES (%s, %s, 'qualifying', 1, 0, 0, 0, %s, %s)
ON CONFLICT (project_id, labeler_id)
DO UPDATE SET gold_served = annotation_goldrecord.gold_served + 1, updated_at = excluded.updated_at
"""


def gold_candidate_id(*, project_id: int, labeler_id: int, kind: str | None) -> int | None:
    sql = _GOLD_CANDIDATE.format(kind="AND t.kind = %s" if kind else "")
    params = [project_id] + ([kind] if kind else []) + [labeler_id, labeler_id, labeler_id]
    types = ("bigint",) + (("text",) if kind else ()) + ("integer", "integer", "integer")
    row = fetch_one(sql, params, name="claim_gold_kind" if kind else "claim_gold", types=types)
    return row[0] if row else None


def gold_lease(*, task_id: int, project_id: int, labeler_id: int, expires_at: datetime, now: datetime) -> None:
    """Lease a gold task to the labeler, and count it served."""
    with connection.cursor() as cursor:
        execute(cursor, _LEASE_GOLD, [task_id, labeler_id, project_id, db_datetime(expires_at), db_datetime(now)],
                name="claim_gold_lease", types=("bigint", "integer", "bigint", "timestamptz", "timestamptz"))
        execute(cursor, _GOLD_SERVED, [project_id, labeler_id, db_datetime(now), db_datetime(now)],
                name="claim_gold_served", types=("bigint", "integer", "timestamptz", "timestamptz"))


_RELEASE = "DELETE FROM annotation_lease WHERE task_id = %s AND labeler_id = %s RETURNING expires_at"


def lease_release(*, task_id: int, labeler_id: int) -> datetime | None:
    """Delete the labeler's lease on the task; return when it expired, or None if there was none."""
    row = fetch_one(_RELEASE, [task_id, labeler_id], name="submit_lease_release", types=("bigint", "integer"))
    return None if row is None else column_value(Lease, "expires_at", row[0])


# The leased task and its prompt, for the labeler's page.
_CLAIMED = f"""
SELECT {columns(Task, "t")}, {columns(Prompt, "pr")}
FROM annotation_task t JOIN annotation_prompt pr ON pr.id = t.prompt_id WHERE t.id = %s
"""


def claimed_task(*, task_id: int) -> Task:
    """The leased task with its prompt, as the ORM would load them."""
    row = fetch_one(_CLAIMED, [task_id], name="claimed_task", types=("bigint",))
    task, after = load(Task, row)
    task.prompt, _ = load(Prompt, row, after)
    return task
