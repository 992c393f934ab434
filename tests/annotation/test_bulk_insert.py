"""rows_insert on PostgreSQL: the rows and their ids in order, defaults as the ORM gives them, a
constant column sent once, and a UUID default made per row by the server."""

import pytest
from django.db import connection

from annotation.bulk_insert import rows_insert
from annotation.models import Annotation, Prompt, Response
from tests.factories import ProjectFactory, TaskFactory

pytestmark = pytest.mark.django_db


def test_rows_come_back_in_order_with_varying_and_constant_columns():
    project = ProjectFactory()
    ids = rows_insert(Prompt, {
        "project": [project.pk] * 3,
        "messages": [[{"role": "user", "content": f"q{i}"}] for i in range(3)],
        "external_id": ["a", "b", "c"],
        "metadata": [{}, {"n": 1}, {}],
    })
    prompts = {p.pk: p for p in Prompt.objects.filter(pk__in=ids)}
    assert [prompts[pk].external_id for pk in ids] == ["a", "b", "c"]
    assert [prompts[pk].messages[0]["content"] for pk in ids] == ["q0", "q1", "q2"]
    assert [prompts[pk].metadata for pk in ids] == [{}, {"n": 1}, {}]
    assert len({prompts[pk].created_at for pk in ids}) == 1 and all(prompts[pk].project_id == project.pk for pk in ids)


def test_every_column_constant_still_makes_one_row_each():
    prompt = Prompt.objects.create(project=ProjectFactory(), messages=[{"role": "user", "content": "q"}])
    ids = rows_insert(Response, {"prompt": [prompt.pk] * 4, "text": ["same"] * 4})
    assert len(ids) == 4 and len(set(ids)) == 4
    assert list(Response.objects.filter(pk__in=ids).values_list("text", flat=True)) == ["same"] * 4


def test_a_uuid_default_is_a_new_random_uuid_per_row():
    task = TaskFactory()
    tasks = [task] + [TaskFactory(project=task.project) for _ in range(2)]
    ids = rows_insert(Annotation, {
        "task": [t.pk for t in tasks], "project": [task.project_id] * 3, "labeler": [None] * 3,
        "external_source": ["hh-rlhf"] * 3, "kind": [Annotation.Kind.DEMONSTRATION] * 3, "text": ["x", "y", "z"],
    })
    client_ids = list(Annotation.objects.filter(pk__in=ids).values_list("client_id", flat=True))
    assert len(set(client_ids)) == 3 and all(c.version == 4 for c in client_ids)


def test_a_constant_column_travels_once_as_a_parameter():
    prompt = Prompt.objects.create(project=ProjectFactory(), messages=[{"role": "user", "content": "q"}])
    with connection.execute_wrapper(_capture := _Capture()):
        rows_insert(Response, {"prompt": [prompt.pk] * 500, "text": [f"r{i}" for i in range(500)]})
    (sql, params), = _capture.calls
    arrays = [p for p in params if isinstance(p, list)]
    assert arrays == [[f"r{i}" for i in range(500)]]  # only the text varies
    assert "unnest(" in sql and "gen_random_uuid" not in sql


class _Capture:
    def __init__(self):
        self.calls = []

    def __call__(self, execute, sql, params, many, context):
        self.calls.append((sql, params))
        return execute(sql, params, many, context)
