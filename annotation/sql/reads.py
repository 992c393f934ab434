"""The labeler pages' hot reads: every labeler request checks a membership, every submit loads its
task, every task page shows its responses, and the work page counts the tasks waiting.

selectors.py holds the scope rules (a missing row is a 404) and calls these.
"""

from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections

from ..models import Lease, Membership, Project, Prompt, Task
from .names import sql
from .rules import CLAIM_ORDER, NONE_AUTHORED_BY, NOT_DONE_BY, has_room
from .run import column_value, columns, db_datetime, execute, fetch_one, load

_MEMBERSHIP = sql("""
SELECT {membership_columns}, {project_columns}
FROM {membership} m JOIN {project} p ON p.{project.id} = m.{membership.project}
WHERE m.{membership.user} = %s AND m.{membership.project} = %s
""", membership_columns=columns(Membership, "m"), project_columns=columns(Project, "p"))
# Two lookups on unique keys; the membership test names the task's own project.
_TASK_FOR_MEMBER = sql("""
SELECT {task_columns}, {project_columns}, {prompt_columns}
FROM {task} t JOIN {project} p ON p.{project.id} = t.{task.project} JOIN {prompt} pr ON pr.{prompt.id} = t.{task.prompt}
WHERE t.{task.id} = %s AND EXISTS (
  SELECT 1 FROM {membership} m WHERE m.{membership.project} = t.{task.project} AND m.{membership.user} = %s
)
""", task_columns=columns(Task, "t"), project_columns=columns(Project, "p"), prompt_columns=columns(Prompt, "pr"))
_LEASE_EXPIRY = sql("SELECT {lease.expires_at} FROM {lease} WHERE {lease.task} = %s AND {lease.labeler} = %s")
# A comparison's responses in display order (every comparison's payload; gold tasks made these
# common enough on the hot path to write them as SQL, as the rest of it).
_SHOWN = sql("""
SELECT r.{response.id}, r.{response.text}
FROM {taskresponse} tr JOIN {response} r ON r.{response.id} = tr.{taskresponse.response}
WHERE tr.{taskresponse.task} = %s ORDER BY tr.{taskresponse.position}
""")

# Per project, the open tasks of one kind this labeler could be given now, counted up to a cap: the
# claim's own rules with LIMIT, so a count walks at most `cap` rows of the claim's index however big
# the project is. A task the labeler holds a lease on counts: it is theirs. One statement for any
# number of projects.
_WAITING_KIND = sql("""
(SELECT COUNT(*) FROM (
  SELECT 1 FROM {task} t
  WHERE t.{task.project} = p.{project.id} AND t.{task.kind} = '{kind}' AND t.{task.status} = {open}
    AND NOT t.{task.is_gold}
    AND {room}
    AND {not_done}
    AND {none_authored}
  ORDER BY {order} LIMIT %s
) w)
""", room=has_room(others_only=True), not_done=NOT_DONE_BY, none_authored=NONE_AUTHORED_BY, order=CLAIM_ORDER)
_WAITING = sql("SELECT p.{project.id}, {counts} FROM {project} p WHERE p.{project.id} IN ({marks})")


def _db():
    return connections[DEFAULT_DB_ALIAS]


def membership_with_project(*, user_id: int, project_id: int) -> Membership | None:
    """The membership with its project loaded, or None."""
    row = fetch_one(_MEMBERSHIP, [user_id, project_id], name="membership_get", types=("integer", "bigint"))
    if row is None:
        return None
    membership, after = load(Membership, row)
    membership.project, _ = load(Project, row, after)
    return membership


def task_for_member(*, task_id: int, user_id: int) -> Task | None:
    """The task with its project and prompt loaded, if the user is a member of its project; else None."""
    row = fetch_one(_TASK_FOR_MEMBER, [task_id, user_id], name="task_get_for_member", types=("bigint", "integer"))
    if row is None:
        return None
    task, after = load(Task, row)
    task.project, after = load(Project, row, after)
    task.prompt, _ = load(Prompt, row, after)
    return task


def lease_expiry(*, task_id: int, labeler_id: int) -> datetime | None:
    """When the labeler's lease on the task expires (live or not); None without one."""
    row = fetch_one(_LEASE_EXPIRY, [task_id, labeler_id], name="task_payload_lease", types=("bigint", "integer"))
    return column_value(Lease, "expires_at", row[0]) if row else None


def shown_responses(*, task_id: int) -> list[dict]:
    """[{"id", "text"}] of the responses a comparison shows, in display order."""
    with _db().cursor() as cursor:
        execute(cursor, _SHOWN, [task_id], name="task_payload_shown", types=("bigint",))
        return [{"id": pk, "text": text} for pk, text in cursor.fetchall()]


def waiting_counts(
    *, labeler_id: int, project_ids: list[int], kinds: list[str], cap: int, now: datetime
) -> dict[int, dict[str, int]]:
    """{project id: {kind: open tasks this labeler could be given now, up to `cap`}}."""
    counts = ", ".join(_WAITING_KIND.format(kind=kind) for kind in kinds)
    statement = _WAITING.format(counts=counts, marks=", ".join(["%s"] * len(project_ids)))
    params = [db_datetime(now), labeler_id, labeler_id, labeler_id, cap] * len(kinds) + list(project_ids)
    with _db().cursor() as cursor:
        cursor.execute(statement, params)
        return {row[0]: dict(zip(kinds, row[1:])) for row in cursor.fetchall()}
