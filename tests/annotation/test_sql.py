"""The hot path's SQL (annotation/sql/): names from the models' _meta, and the claim's plan on PostgreSQL."""

import re
from datetime import timedelta

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.utils import timezone

from annotation.models import Lease, Project, Prompt, Task
from annotation.sql import claim
from annotation.sql.names import sql
from annotation.sql.rules import has_room
from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db


def test_templates_take_tables_columns_and_choices_from_the_models():
    text = sql("SELECT t.{task.prompt} FROM {task} t WHERE t.{task.status} = {open} {lock}")

    assert text == f"SELECT t.{Task._meta.get_field('prompt').column} FROM {Task._meta.db_table} t " \
                   f"WHERE t.status = '{Task.Status.OPEN}' {{lock}}"
    with pytest.raises(FieldDoesNotExist):
        sql("SELECT t.{task.no_such_field} FROM {task} t")


def test_the_capacity_rule_is_one_fragment_in_every_statement_that_checks_room():
    room, others = has_room(others_only=False), has_room(others_only=True)
    lease_table = Lease._meta.db_table

    assert room in claim._CANDIDATE
    assert others in claim._LEASE and others in claim._ROOM
    # Written once: no statement counts live leases against `required` in a text of its own.
    for statement in (claim._CANDIDATE, claim._LEASE, claim._ROOM):
        assert statement.count(f"FROM {lease_table} l WHERE") == 1


def test_task_has_room_counts_other_live_leases_but_not_the_labelers_own():
    project = ProjectFactory(overlap=1)
    first, second = member(project), member(project)
    prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": "Hi"}], external_id="1")
    task = Task.objects.create(project=project, prompt=prompt, kind=Task.Kind.DEMONSTRATION, required=1)
    now = timezone.now()
    Lease.objects.create(task=task, labeler=first, project=project, expires_at=now + timedelta(minutes=5))

    assert claim.task_has_room(task_id=task.pk, labeler_id=first.pk, now=now)
    assert not claim.task_has_room(task_id=task.pk, labeler_id=second.pk, now=now)
    # An expired lease counts for nothing.
    assert claim.task_has_room(task_id=task.pk, labeler_id=second.pk, now=now + timedelta(minutes=6))


def _bulk_tasks(project: Project, count: int, *, status: str = "open", kind: str = "demonstration") -> None:
    """`count` tasks with their prompts, inserted in two statements."""
    prompt, task = Prompt._meta.db_table, Task._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {prompt} (project_id, messages, external_id, metadata, created_at, updated_at)
            SELECT %s, '[{{"role": "user", "content": "Q"}}]'::jsonb, %s || i, '{{}}'::jsonb, now(), now()
            FROM generate_series(1, %s) AS i
            """,
            [project.pk, f"{status}-{kind}-", count],
        )
        cursor.execute(
            f"""
            INSERT INTO {task} (project_id, prompt_id, kind, priority, required, done, status, metadata,
                                created_at, updated_at)
            SELECT project_id, id, %s, 0, 2, 0, %s, '{{}}'::jsonb, now(), now()
            FROM {prompt} WHERE project_id = %s AND external_id LIKE %s
            """,
            [kind, status, project.pk, f"{status}-{kind}-%"],
        )


def test_the_claim_walks_its_index_on_a_big_project_with_real_statistics():
    if connection.vendor != "postgresql":
        pytest.fail("This test checks PostgreSQL's plan: run the suite on PostgreSQL (DATABASE_URL).")
    project, other = ProjectFactory(overlap=2), ProjectFactory(overlap=2)
    labeler = member(project)
    _bulk_tasks(project, 3000)
    _bulk_tasks(project, 3000, status="done")
    _bulk_tasks(project, 300, kind=Task.Kind.COMPARISON)  # the rarer kind: its own index pays
    _bulk_tasks(other, 6000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Task._meta.db_table}")

    def plan(kind: str | None) -> str:
        statement = claim._CANDIDATE.format(kind=claim.KIND_IS if kind else "", skipped="",
                                            lock="FOR UPDATE OF t SKIP LOCKED")
        params = [project.pk] + ([kind] if kind else []) + [timezone.now(), labeler.pk, labeler.pk]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + statement, params)
            return "\n".join(row[0] for row in cursor.fetchall())

    for kind, index in ((None, "task_claim_any"), (Task.Kind.COMPARISON, "task_claim_kind")):
        text = plan(kind)
        assert index in text, text
        # The task table itself (annotation_taskresponse shares its prefix, and is empty here).
        assert not re.search(rf"Seq Scan on {Task._meta.db_table}\b", text), text
