"""rows_insert on PostgreSQL: the rows and their ids in order, defaults as the ORM gives them, text
that COPY must escape kept as it was, and a random UUID per row."""

import uuid

import pytest

from annotation.bulk_insert import random_uuids, rows_insert
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


def test_text_with_copy_separators_and_backslashes_comes_back_unchanged():
    prompt = Prompt.objects.create(project=ProjectFactory(), messages=[{"role": "user", "content": "q"}])
    texts = ["tab\there", "two\nlines\r\n", "back\\slash \\N", "\\.", "naïve ✓"]
    ids = rows_insert(Response, {"prompt": [prompt.pk] * len(texts), "text": texts})
    stored = dict(Response.objects.filter(pk__in=ids).values_list("pk", "text"))
    assert [stored[pk] for pk in ids] == texts
    ids = rows_insert(Prompt, {
        "project": [prompt.project_id] * 2, "external_id": ["x\ty", "z\\"],
        "messages": [[{"role": "user", "content": "a\n\tb\\"}], [{"role": "user", "content": "\\N"}]],
        "metadata": [{"k": "v\\\n"}, {}],
    })
    rows = {p.pk: p for p in Prompt.objects.filter(pk__in=ids)}
    assert [rows[pk].external_id for pk in ids] == ["x\ty", "z\\"]
    assert [rows[pk].messages[0]["content"] for pk in ids] == ["a\n\tb\\", "\\N"]
    assert [rows[pk].metadata for pk in ids] == [{"k": "v\\\n"}, {}]


def test_without_returning_the_rows_are_written_and_no_ids_come_back():
    prompt = Prompt.objects.create(project=ProjectFactory(), messages=[{"role": "user", "content": "q"}])
    assert rows_insert(Response, {"prompt": [prompt.pk] * 3, "text": ["a", "b", "c"]}, returning=False) == []
    assert sorted(Response.objects.filter(prompt=prompt).values_list("text", flat=True)) == ["a", "b", "c"]


def test_random_uuids_are_distinct_version_4_uuids():
    made = random_uuids(2000)
    parsed = [uuid.UUID(text) for text in made]
    assert len(set(made)) == 2000 and [str(u) for u in parsed] == made
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in parsed)


def test_a_column_is_escaped_at_once_and_a_nul_cannot_shift_a_value_into_the_next_row():
    from annotation.bulk_insert import _escape_all

    assert _escape_all(["a\tb", "c\\d", "e\nf\r"]) == ["a\\tb", "c\\\\d", "e\\nf\\r"]
    plain = ["x", "y"]
    assert _escape_all(plain) is plain
    assert _escape_all(["nul\0inside\n", "next"]) == ["nul\0inside\\n", "next"]
