"""The submit's SQL: the statements every label runs, in the transaction that stores it.

Plain SQL for the reason claiming.py gives (see queries.py): the ORM spent as long building these
statements as PostgreSQL spent running them. It still loads the rows of a repeat (a replayed
client_id), which are rare. The same text runs on PostgreSQL, with the task's row lock, and on
SQLite, which serialises writers.
"""

import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection

from . import overlap as overlap_rules
from .models import Annotation, Project, Task
from .queries import column_value, columns, db_datetime, db_value, execute, fetch_one, load, on_postgres

_CLIENT_ID_TAKEN = "SELECT id FROM annotation_annotation WHERE client_id = %s"
_TASK_LOCKED = f"SELECT {columns(Task, 't')} FROM annotation_task t WHERE t.id = %s"
# A twin with this client_id or earlier work on the task: two rows at most, the twin wins below.
_EARLIER = """
SELECT id, client_id FROM annotation_annotation
WHERE client_id = %s OR (task_id = %s AND labeler_id = %s) LIMIT 2
"""
_AUTHORED = """
SELECT 1 FROM annotation_taskresponse tr JOIN annotation_response r ON r.id = tr.response_id
WHERE tr.task_id = %s AND r.author_id = %s LIMIT 1
"""
_SHOWN_IDS = "SELECT response_id FROM annotation_taskresponse WHERE task_id = %s"
_COUNT_DONE = "UPDATE annotation_task SET done = %s, required = %s, status = %s, updated_at = %s WHERE id = %s"
# The rankings of the task's comparisons that count (annotation.models.ANNOTATION_COUNTS): read
# under the task's row lock by the submit that fills it, to decide whether it needs one more label.
_COUNTING_RANKINGS = """
SELECT ranking FROM annotation_annotation
WHERE task_id = %s AND kind = 'comparison' AND review_state NOT IN ('rejected', 'corrected') AND NOT external_hidden
"""
# A graded gold answer (or a skip while qualifying) into the labeler's gold record, made on first
# use; the upsert takes the record's row lock, so two tabs' submits count one after the other.
# A skip counts only while the labeler is still qualifying.
_GOLD_ANSWERED = """
INSERT INTO annotation_goldrecord (project_id, labeler_id, status, gold_served, gold_answered, gold_correct,
                                   qualification_skips, created_at, updated_at)
VALUES (%s, %s, 'qualifying', 0, %s, %s, %s, %s, %s)
ON CONFLICT (project_id, labeler_id) DO UPDATE SET
  gold_answered = annotation_goldrecord.gold_answered + excluded.gold_answered,
  gold_correct = annotation_goldrecord.gold_correct + excluded.gold_correct,
  qualification_skips = annotation_goldrecord.qualification_skips
    + CASE WHEN annotation_goldrecord.status = 'qualifying' THEN excluded.qualification_skips ELSE 0 END,
  updated_at = excluded.updated_at
RETURNING id, status, gold_answered, gold_correct, qualification_skips
"""


def annotation_by_client_id(client_uuid: uuid.UUID) -> Annotation | None:
    """The annotation stored under this client_id, or None: one index probe, the ORM only for a repeat."""
    row = fetch_one(_CLIENT_ID_TAKEN, [db_value(Annotation, "client_id", client_uuid)],
                    name="submit_client_id", types=("uuid",))
    return None if row is None else Annotation.objects.get(pk=row[0])


def task_locked(task_id: int) -> Task:
    """The task, re-read under its row lock (SQLite serialises writers instead)."""
    sql = _TASK_LOCKED + (" FOR UPDATE" if on_postgres() else "")
    task, _ = load(Task, fetch_one(sql, [task_id], name="submit_task_locked", types=("bigint",)))
    return task


def earlier_annotation(*, task: Task, labeler: AbstractBaseUser, client_uuid: uuid.UUID) -> Annotation | None:
    """Under the task's lock: the twin stored under this client_id, else the labeler's earlier work on the task."""
    with connection.cursor() as cursor:
        execute(cursor, _EARLIER, [db_value(Annotation, "client_id", client_uuid), task.pk, labeler.pk],
                name="submit_earlier", types=("uuid", "bigint", "integer"))
        rows = cursor.fetchall()
    if not rows:
        return None
    twin = [pk for pk, stored in rows if column_value(Annotation, "client_id", stored) == client_uuid]
    return Annotation.objects.get(pk=(twin or [rows[0][0]])[0])


def shown_response_ids(task_id: int) -> list[int]:
    """The ids of the responses a comparison shows (what its ranking must place)."""
    with connection.cursor() as cursor:
        execute(cursor, _SHOWN_IDS, [task_id], name="submit_shown_ids", types=("bigint",))
        return [row[0] for row in cursor.fetchall()]


def authored_a_response(*, task: Task, labeler: AbstractBaseUser) -> bool:
    """Whether the labeler wrote one of the responses the task shows (they may not judge it)."""
    row = fetch_one(_AUTHORED, [task.pk, labeler.pk], name="submit_authored", types=("bigint", "integer"))
    return row is not None


def gold_record_count(
    *, project_id: int, labeler_id: int, answered: int, correct: int, skips: int, now: datetime
) -> tuple[int, str, int, int, int]:
    """Add to the labeler's gold record; returns its (id, status, answered, correct, qualification skips) after."""
    return fetch_one(
        _GOLD_ANSWERED, [project_id, labeler_id, answered, correct, skips, db_datetime(now), db_datetime(now)],
        name="submit_gold_answered",
        types=("bigint", "integer", "integer", "integer", "integer", "timestamptz", "timestamptz"),
    )


def counting_rankings(task_id: int) -> list:
    """The rankings of the task's comparison annotations that count, in no particular order."""
    with connection.cursor() as cursor:
        execute(cursor, _COUNTING_RANKINGS, [task_id], name="submit_counting_rankings", types=("bigint",))
        return [column_value(Annotation, "ranking", row[0]) for row in cursor.fetchall()]


def count_done(*, task: Task, now: datetime, project: Project | None = None) -> None:
    """One more annotation on the task; it is done once it has the annotations it requires.

    A gold task counts its annotations too, but is never done: every labeler may get it. With the
    project's dynamic overlap on (pass the project), a comparison whose labels disagree grows by
    one label instead of finishing (annotation/overlap.py).
    """
    task.done += 1
    if task.done >= task.required and not task.is_gold:
        grown = _grown_required(task=task, project=project)
        if grown is None:
            task.status = Task.Status.DONE
        else:
            task.required = grown
    task.updated_at = now
    with connection.cursor() as cursor:
        execute(cursor, _COUNT_DONE, [task.done, task.required, task.status, db_datetime(now), task.pk],
                name="submit_count_done", types=("integer", "integer", "text", "timestamptz", "bigint"))


def _grown_required(*, task: Task, project: Project | None) -> int | None:
    """The task's new `required` if dynamic overlap grows it now, else None. Only under the task's lock."""
    if project is None or not project.dynamic_overlap or task.kind != Task.Kind.COMPARISON:
        return None
    grown = overlap_rules.grown_required(done=task.done, required=task.required, max_overlap=project.max_overlap)
    if grown is None:
        return None
    rankings = counting_rankings(task.pk)
    disagree = overlap_rules.needs_another_label(rankings=rankings, threshold=project.agreement_threshold)
    return grown if disagree else None
