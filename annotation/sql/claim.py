"""The claim's SQL: the hot path of the labeler API, a few index lookups in one short transaction.

Why plain SQL, and how the names get in: see the package's docstring and names.py. The same text
runs on PostgreSQL (with row locks) and on SQLite (which serialises writers, so it needs none).
"""

from datetime import datetime
from typing import NamedTuple

from django.db import connection

from ..models import Lease, Prompt, Task
from .names import sql
from .rules import CLAIM_ORDER, KIND_IS, NEVER_SERVED_TO, NONE_AUTHORED_BY, NOT_DONE_BY, has_room, not_in
from .run import column_value, columns, db_datetime, execute, fetch_one, load, on_postgres

# The labeler's membership row, locked so that one labeler's claims in a project run one at a
# time. The held lease is read by the next, separate statement: one that waited for this lock
# must see the lease that the claim before it committed. On PostgreSQL the same statement turns
# off waiting for fsync for this transaction (SET LOCAL, without a round trip of its own): a lease
# is cheap to lose in a crash, the task just frees up. Submits keep synchronous commits.
_LOCK_MEMBER = sql("""
SELECT m.{membership.id} {sync} FROM {membership} m
WHERE m.{membership.project} = %s AND m.{membership.user} = %s {lock}
""")
# The same lock in a project that serves gold tasks, with the labeler's gold record beside it: one
# more probe, of the record's unique (project, labeler) index, and no extra round trip.
_LOCK_MEMBER_GOLD = sql("""
SELECT m.{membership.id}, g.{goldrecord.status}, g.{goldrecord.gold_served}, g.{goldrecord.gold_answered},
       g.{goldrecord.gold_correct}, g.{goldrecord.qualification_skips} {sync}
FROM {membership} m
LEFT JOIN {goldrecord} g
  ON g.{goldrecord.project} = m.{membership.project} AND g.{goldrecord.labeler} = m.{membership.user}
WHERE m.{membership.project} = %s AND m.{membership.user} = %s {lock}
""")

# The task of a live lease the labeler already holds in the project (resume after a reload).
_HELD = sql("""
SELECT l.{lease.task}, l.{lease.expires_at} FROM {lease} l JOIN {task} t ON t.{task.id} = l.{lease.task}
WHERE l.{lease.labeler} = %s AND l.{lease.project} = %s AND l.{lease.expires_at} > %s {kind}
ORDER BY l.{lease.created_at} LIMIT 1
""")

# The best open task with room that this labeler has neither done nor written a response of.
# It walks the partial index task_claim_any / task_claim_kind in order and stops at the first hit.
# Gold tasks are not in those indexes (NOT t.is_gold matches their condition): they have a walk of
# their own, _GOLD_CANDIDATE.
_CANDIDATE = sql("""
SELECT t.{task.id} FROM {task} t
WHERE t.{task.project} = %s AND t.{task.status} = {open} AND NOT t.{task.is_gold} {kind} {skipped}
  AND {room}
  AND {not_done}
  AND {none_authored}
ORDER BY {order} LIMIT 1 {lock}
""", room=has_room(others_only=False), not_done=NOT_DONE_BY, none_authored=NONE_AUTHORED_BY, order=CLAIM_ORDER)

# Lease the task only if it still has room. This is a new statement, so on PostgreSQL it sees
# every lease committed since the candidate read, which SKIP LOCKED may have missed. An expired
# lease of the same labeler on the task is renewed in place.
_LEASE = sql("""
INSERT INTO {lease} ({lease.task}, {lease.labeler}, {lease.project}, {lease.expires_at}, {lease.created_at})
SELECT t.{task.id}, %s, t.{task.project}, %s, %s FROM {task} t
WHERE t.{task.id} = %s AND {room}
ON CONFLICT ({lease.task}, {lease.labeler}) DO UPDATE SET {lease.expires_at} = excluded.{lease.expires_at}
""", room=has_room(others_only=True))

# The same rule for a task the caller holds locked already (the heartbeat of an expired lease).
_ROOM = sql("SELECT 1 FROM {task} t WHERE t.{task.id} = %s AND {room}", room=has_room(others_only=True))


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
    lock_member = _LOCK_MEMBER_GOLD if gold else _LOCK_MEMBER
    with connection.cursor() as cursor:
        execute(
            cursor,
            lock_member.format(sync=", set_config('synchronous_commit', 'off', true)" if postgres else "",
                       lock=("FOR UPDATE OF m" if gold else "FOR UPDATE") if postgres else ""),
            [project_id, labeler_id], name="claim_lock_member_gold" if gold else "claim_lock_member",
            types=("bigint", "integer"),
        )
        member = cursor.fetchone()
        if member is None:
            return False, None, None, None
        record = GoldState(*member[1:6]) if gold and member[1] is not None else None
        execute(
            cursor, _HELD.format(kind=KIND_IS if kind else ""),
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
    statement = _CANDIDATE.format(
        kind=KIND_IS if kind else "",
        skipped=not_in(len(skipped)) if skipped else "",
        lock="FOR UPDATE OF t SKIP LOCKED" if on_postgres() else "",
    )
    params = [project_id] + ([kind] if kind else []) + skipped + [db_datetime(now), labeler_id, labeler_id]
    name = "" if skipped else ("claim_candidate_kind" if kind else "claim_candidate")
    types = ("bigint",) + (("text",) if kind else ()) + ("timestamptz", "integer", "integer")
    with connection.cursor() as cursor:
        execute(cursor, statement, params, name=name, types=types)
        row = cursor.fetchone()
    return row[0] if row else None


def lease_if_room(*, task_id: int, labeler_id: int, expires_at: datetime, now: datetime) -> bool:
    params = [labeler_id, db_datetime(expires_at), db_datetime(now), task_id, db_datetime(now), labeler_id]
    types = ("integer", "timestamptz", "timestamptz", "bigint", "timestamptz", "integer")
    with connection.cursor() as cursor:
        execute(cursor, _LEASE, params, name="claim_lease", types=types)
        return cursor.rowcount == 1


def task_has_room(*, task_id: int, labeler_id: int, now: datetime) -> bool:
    """Whether the task can take this labeler now: the lease statement's rule, without the lease."""
    row = fetch_one(_ROOM, [task_id, db_datetime(now), labeler_id], name="claim_room",
                    types=("bigint", "timestamptz", "integer"))
    return row is not None


# Gold tasks ------------------------------------------------------------------------------------

# The labeler's next gold task: the first, in the claim's order, that they have never been served
# (no lease of theirs, live or expired) nor annotated or skipped, and that shows no response of
# theirs. It walks the partial index task_gold_any / task_gold_kind, so its cost grows with the
# gold tasks this labeler has done, never with the project. There is no capacity to check (a gold
# task never fills up) and so no row to lock: the membership lock already runs this labeler's
# claims one at a time, which is what "at most once" needs.
_GOLD_CANDIDATE = sql("""
SELECT t.{task.id} FROM {task} t
WHERE t.{task.project} = %s AND t.{task.is_gold} {kind}
  AND {not_done}
  AND {never_served}
  AND {none_authored}
ORDER BY {order} LIMIT 1
""", not_done=NOT_DONE_BY, never_served=NEVER_SERVED_TO, none_authored=NONE_AUTHORED_BY, order=CLAIM_ORDER)

_LEASE_GOLD = sql("""
INSERT INTO {lease} ({lease.task}, {lease.labeler}, {lease.project}, {lease.expires_at}, {lease.created_at})
VALUES (%s, %s, %s, %s, %s)
""")

# One more gold task served: the count is part of the next claim's draw (gold.gold_draw). The
# record is made on the labeler's first gold task.
_GOLD_SERVED = sql("""
INSERT INTO {goldrecord} ({goldrecord.project}, {goldrecord.labeler}, {goldrecord.status}, {goldrecord.gold_served},
                          {goldrecord.gold_answered}, {goldrecord.gold_correct}, {goldrecord.qualification_skips},
                          {goldrecord.created_at}, {goldrecord.updated_at})
VALUES (%s, %s, {qualifying}, 1, 0, 0, 0, %s, %s)
ON CONFLICT ({goldrecord.project}, {goldrecord.labeler})
DO UPDATE SET {goldrecord.gold_served} = {goldrecord}.{goldrecord.gold_served} + 1,
              {goldrecord.updated_at} = excluded.{goldrecord.updated_at}
""")


def gold_candidate_id(*, project_id: int, labeler_id: int, kind: str | None) -> int | None:
    statement = _GOLD_CANDIDATE.format(kind=KIND_IS if kind else "")
    params = [project_id] + ([kind] if kind else []) + [labeler_id, labeler_id, labeler_id]
    types = ("bigint",) + (("text",) if kind else ()) + ("integer", "integer", "integer")
    row = fetch_one(statement, params, name="claim_gold_kind" if kind else "claim_gold", types=types)
    return row[0] if row else None


def gold_lease(*, task_id: int, project_id: int, labeler_id: int, expires_at: datetime, now: datetime) -> None:
    """Lease a gold task to the labeler, and count it served."""
    with connection.cursor() as cursor:
        execute(cursor, _LEASE_GOLD, [task_id, labeler_id, project_id, db_datetime(expires_at), db_datetime(now)],
                name="claim_gold_lease", types=("bigint", "integer", "bigint", "timestamptz", "timestamptz"))
        execute(cursor, _GOLD_SERVED, [project_id, labeler_id, db_datetime(now), db_datetime(now)],
                name="claim_gold_served", types=("bigint", "integer", "timestamptz", "timestamptz"))


_RELEASE = sql(
    "DELETE FROM {lease} WHERE {lease.task} = %s AND {lease.labeler} = %s RETURNING {lease.expires_at}"
)


def lease_release(*, task_id: int, labeler_id: int) -> datetime | None:
    """Delete the labeler's lease on the task; return when it expired, or None if there was none."""
    row = fetch_one(_RELEASE, [task_id, labeler_id], name="submit_lease_release", types=("bigint", "integer"))
    return None if row is None else column_value(Lease, "expires_at", row[0])


# The leased task and its prompt, for the labeler's page.
_CLAIMED = sql("""
SELECT {task_columns}, {prompt_columns}
FROM {task} t JOIN {prompt} pr ON pr.{prompt.id} = t.{task.prompt} WHERE t.{task.id} = %s
""", task_columns=columns(Task, "t"), prompt_columns=columns(Prompt, "pr"))


def claimed_task(*, task_id: int) -> Task:
    """The leased task with its prompt, as the ORM would load them."""
    row = fetch_one(_CLAIMED, [task_id], name="claimed_task", types=("bigint",))
    task, after = load(Task, row)
    task.prompt, _ = load(Prompt, row, after)
    return task
