"""The submit's SQL: the statements every label runs, in the transaction that stores it.

Plain SQL for the reason the package's docstring gives; it still loads the rows of a repeat (a
replayed client_id) with the ORM, as those are rare. The same text runs on PostgreSQL, with the
task's row lock, and on SQLite, which serialises writers.
"""

import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection

from .. import overlap as overlap_rules
from ..models import Annotation, Project, Task
from .names import sql
from .rules import authored_by
from .run import column_value, columns, db_datetime, db_value, execute, fetch_one, load, on_postgres

_CLIENT_ID_TAKEN = sql("SELECT {annotation.id} FROM {annotation} WHERE {annotation.client_id} = %s")
_TASK_LOCKED = sql("SELECT {columns} FROM {task} t WHERE t.{task.id} = %s", columns=columns(Task, "t"))
# A twin with this client_id or earlier work on the task: two rows at most, the twin wins below.
_EARLIER = sql("""
SELECT {annotation.id}, {annotation.client_id} FROM {annotation}
WHERE {annotation.client_id} = %s OR ({annotation.task} = %s AND {annotation.labeler} = %s) LIMIT 2
""")
_AUTHORED = sql("SELECT 1 WHERE {authored}", authored=authored_by("%s"))
_SHOWN_IDS = sql("SELECT {taskresponse.response} FROM {taskresponse} WHERE {taskresponse.task} = %s")
_COUNT_DONE = sql("""
UPDATE {task} SET {task.done} = %s, {task.required} = %s, {task.status} = %s, {task.updated_at} = %s
WHERE {task.id} = %s
""")
# The rankings of the task's comparisons that count (annotation.models.ANNOTATION_COUNTS): read
# under the task's row lock by the submit that fills it, to decide whether it needs one more label.
_COUNTING_RANKINGS = sql("""
SELECT {annotation.ranking} FROM {annotation}
WHERE {annotation.task} = %s AND {annotation.kind} = {comparison}
  AND {annotation.review_state} NOT IN ({rejected}, {corrected})
  AND NOT {annotation.external_hidden}
""")
# A graded gold answer (or a skip while qualifying) into the labeler's gold record, made on first
# use; the upsert takes the record's row lock, so two tabs' submits count one after the other.
# A skip counts only while the labeler is still qualifying.
_GOLD_ANSWERED = sql("""
INSERT INTO {goldrecord} ({goldrecord.project}, {goldrecord.labeler}, {goldrecord.status}, {goldrecord.gold_served},
                          {goldrecord.gold_answered}, {goldrecord.gold_correct}, {goldrecord.qualification_skips},
                          {goldrecord.created_at}, {goldrecord.updated_at})
VALUES (%s, %s, {qualifying}, 0, %s, %s, %s, %s, %s)
ON CONFLICT ({goldrecord.project}, {goldrecord.labeler}) DO UPDATE SET
  {goldrecord.gold_answered} = {goldrecord}.{goldrecord.gold_answered} + excluded.{goldrecord.gold_answered},
  {goldrecord.gold_correct} = {goldrecord}.{goldrecord.gold_correct} + excluded.{goldrecord.gold_correct},
  {goldrecord.qualification_skips} = {goldrecord}.{goldrecord.qualification_skips}
    + CASE WHEN {goldrecord}.{goldrecord.status} = {qualifying}
           THEN excluded.{goldrecord.qualification_skips} ELSE 0 END,
  {goldrecord.updated_at} = excluded.{goldrecord.updated_at}
RETURNING {goldrecord.id}, {goldrecord.status}, {goldrecord.gold_answered}, {goldrecord.gold_correct},
          {goldrecord.qualification_skips}
""")


def annotation_by_client_id(client_uuid: uuid.UUID) -> Annotation | None:
    """The annotation stored under this client_id, or None: one index probe, the ORM only for a repeat."""
    row = fetch_one(_CLIENT_ID_TAKEN, [db_value(Annotation, "client_id", client_uuid)],
                    name="submit_client_id", types=("uuid",))
    return None if row is None else Annotation.objects.get(pk=row[0])


def task_locked(task_id: int) -> Task:
    """The task, re-read under its row lock (SQLite serialises writers instead)."""
    statement = _TASK_LOCKED + (" FOR UPDATE" if on_postgres() else "")
    task, _ = load(Task, fetch_one(statement, [task_id], name="submit_task_locked", types=("bigint",)))
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
