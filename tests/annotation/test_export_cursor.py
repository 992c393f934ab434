"""An export streams: its rows come from a cursor opened inside a transaction, never WITH HOLD, and the
first lines are out while the cursor still holds the rest (annotation/export_stream.py). Past a
full second batch two backends read it (annotation/export_halves.py), and their rows merge into the same
bytes."""

import time
import uuid
from contextlib import closing

import pytest
from django.db import connection

from annotation import exporters
from annotation.export_fast import fast_batches
from annotation.export_reference import reference_lines
from annotation.export_scope import export_scope
from annotation.models import Annotation
from tests.factories import ProjectFactory, TaskFactory, comparison_task, member

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


def second_connections() -> int:
    """Other backends of this database reading an export's half: the second connection, while it is open."""
    with connection.cursor() as cursor:  # inside the export's transaction: not the figures cached when first read
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND query LIKE '%%export_half_%%'")
        return cursor.fetchone()[0]


def closed_soon() -> bool:
    """True once no second connection is left (a closed connection's backend leaves a moment after)."""
    for _ in range(40):
        if second_connections() == 0:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def mixed(project):
    """Plain pairs, a ranking of three, a tie, a skip and the demonstrations, over more ids than a first batch."""
    labeler = member(project, username="second")
    for i in range(5):
        pair = comparison_task(project=project, texts=(f"A {i} \u00e9 \"q\"", f"B {i}\n"))
        a, b = pair.task_responses.order_by("position").values_list("response_id", flat=True)
        Annotation.objects.create(task=pair, project=project, labeler=labeler, kind=Annotation.Kind.COMPARISON,
                                  ranking=[[b], [a]] if i % 2 else [[a], [b]], strength="better", client_id=uuid.uuid4())
    triple = comparison_task(project=project, texts=("x", "y", "z"))
    x, y, z = triple.task_responses.order_by("position").values_list("response_id", flat=True)
    Annotation.objects.create(task=triple, project=project, labeler=labeler, kind=Annotation.Kind.COMPARISON,
                              ranking=[[z], [x, y]], client_id=uuid.uuid4())
    Annotation.objects.create(task=TaskFactory(project=project), project=project, labeler=labeler,
                              kind=Annotation.Kind.SKIP, reason="Unclear.", client_id=uuid.uuid4())
    return project


@pytest.mark.parametrize("binary", [False, True], ids=["str", "bytes"])
@pytest.mark.parametrize("fmt", ["preference", "raw"])
def test_two_backends_read_past_the_first_batch_and_give_the_reference_bytes(mixed, fmt, binary):
    scope = export_scope(project=mixed, fmt=fmt, filters=None)
    expected = "".join(reference_lines(project=mixed, fmt=fmt, scope=scope))
    with closing(fast_batches(project=mixed, fmt=fmt, scope=scope, batch_rows=2, two_backends=True,
                              binary=binary)) as batches:
        lines = next(batches) + next(batches)
        assert second_connections() == 0  # the first two batches: one cursor
        lines += next(batches)  # past a full second batch: the second connection reads the odd ids
        assert second_connections() == 1
        lines += [line for batch in batches for line in batch]
    assert (b"".join(lines).decode() if binary else "".join(lines)) == expected
    assert closed_soon()
    assert not connection.in_atomic_block and open_cursors() == []


def test_without_two_backends_one_cursor_reads_it_all_in_read_committed(mixed):
    # A run's freeze reads export_lines and, in the same connection, its run's status: it must see a cancel.
    scope = export_scope(project=mixed, fmt="raw", filters=None)
    with closing(fast_batches(project=mixed, fmt="raw", scope=scope, batch_rows=2)) as batches:
        for _ in range(4):
            next(batches)
        assert second_connections() == 0
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone()[0] == "read committed"


def test_only_the_streamed_blocks_ask_for_two_backends(mixed, monkeypatch):
    asked = []
    real = exporters.fast_batches
    def spy(**kwargs):
        asked.append((kwargs.get("two_backends", False), kwargs.get("binary", False)))
        return real(**kwargs)

    monkeypatch.setattr(exporters, "fast_batches", spy)
    assert "".join(exporters.export_lines(project=mixed, fmt="raw")).encode() == b"".join(
        exporters.export_blocks(project=mixed, fmt="raw"))
    assert asked == [(False, False), (True, True)]  # the streamed blocks alone: two backends, lines as bytes


def test_an_export_dropped_while_two_backends_read_closes_both(mixed):
    scope = export_scope(project=mixed, fmt="raw", filters=None)
    with closing(fast_batches(project=mixed, fmt="raw", scope=scope, batch_rows=2, two_backends=True)) as batches:
        for _ in range(3):
            next(batches)
        assert second_connections() == 1
    assert closed_soon()
    assert not connection.in_atomic_block and open_cursors() == []


def test_the_shown_responses_come_from_the_position_index_alone():
    # The raw export reads each task's display positions and their response ids (export_sql.raw_sql): migration
    # 0018 makes the unique (task_id, position) index carry response_id, so no table page is read for them.
    if connection.vendor != "postgresql":
        pytest.skip("INCLUDE columns are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'task_response_position_unique'")
        (definition,) = cursor.fetchone()
    assert definition.startswith("CREATE UNIQUE INDEX")
    assert definition.endswith('(task_id, "position") INCLUDE (response_id)')
