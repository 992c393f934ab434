"""An export streams: its rows come from a cursor opened inside a transaction, never WITH HOLD, and the
first lines are out while the cursor still holds the rest (annotation/export_stream.py)."""

import uuid

import pytest
from django.db import connection

from annotation import exporters
from annotation.export_fast import fast_batches
from annotation.export_scope import export_scope
from annotation.models import Annotation
from tests.factories import ProjectFactory, TaskFactory, member

pytestmark = pytest.mark.django_db(transaction=True)  # no test transaction around: the export's own is seen


@pytest.fixture
def project():
    project = ProjectFactory()
    labeler = member(project)
    for i in range(6):
        task = TaskFactory(project=project)
        Annotation.objects.create(task=task, project=project, labeler=labeler, kind=Annotation.Kind.DEMONSTRATION,
                                  text=f"Answer {i}.", client_id=uuid.uuid4())
    return project


def open_cursors() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, is_holdable, statement FROM pg_cursors")
        return cursor.fetchall()


@pytest.mark.parametrize("fmt", ["sft", "raw"])
def test_the_first_lines_leave_from_a_cursor_without_hold_inside_a_transaction(project, fmt):
    scope = export_scope(project=project, fmt=fmt, filters=None)
    batches = fast_batches(project=project, fmt=fmt, scope=scope, batch_rows=2)
    assert not connection.in_atomic_block  # nothing is read before the first line is asked for
    first = next(batches)
    assert len(first) == 2
    if connection.vendor == "postgresql":
        assert connection.in_atomic_block  # the export's transaction holds the cursor
        cursors = open_cursors()
        assert len(cursors) == 1
        name, holdable, statement = cursors[0]
        assert holdable is False
        assert "annotation_annotation" in statement
    rest = [line for batch in batches for line in batch]
    assert len(rest) == 4  # the other four rows were still to read after the first two left
    assert not connection.in_atomic_block
    if connection.vendor == "postgresql":
        assert open_cursors() == []


def test_a_dropped_export_closes_its_cursor_and_transaction(project):
    lines = exporters.export_lines(project=project, fmt="sft")
    assert next(lines).startswith('{"messages": ')
    lines.close()
    assert not connection.in_atomic_block
    if connection.vendor == "postgresql":
        assert open_cursors() == []
