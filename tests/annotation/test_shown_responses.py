"""Each comparison's shown-responses list, stored whole with its links (annotation/shown_responses.py).

The raw export reads it instead of building the list per annotation. These check, on PostgreSQL
(where it is kept), that what an import stores is the list the export would build, byte for
byte; that any change to a task's links or to a response's text drops it (migration 0019's
triggers) while other updates keep it; and that the raw export equals the reference writer's
with the lists stored, dropped, or never written.
"""

import io
import json

import pytest
from django.db import connection

from annotation import export_fast, exporters
from annotation.export_reference import reference_lines
from annotation.export_scope import export_scope
from annotation.importers import prompts_import
from annotation.models import Response, ShownResponses, Task, TaskResponse
from annotation.shown_responses import shown_columns, shown_json
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

TRICKY = 'Line one\nline "two"\ttab \\ back\x01\x1f é 中文 😀 \u2028 </script> {"json": [1]}'


def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL keeps the lists (SQLite's raw export is made in Python)")


def hh(human: str, chosen: str, rejected: str) -> dict:
    return {"chosen": f"\n\nHuman: {human}\n\nAssistant: {chosen}",
            "rejected": f"\n\nHuman: {human}\n\nAssistant: {rejected}"}


@pytest.fixture
def imported():
    """A project imported from a file: native comparisons of 2 to 4 responses, a demonstration, HH-RLHF labels."""
    project = ProjectFactory()
    lines = [
        {"id": "two", "prompt": "Which?", "responses": [TRICKY, "Plain."]},
        {"id": "four", "prompt": "Rank", "responses": ["a \"quoted\"", "b\\", "c\u00e9", "d"]},
        {"id": "demo", "prompt": "Write one."},
    ]
    result = prompts_import(project=project, fileobj=io.BytesIO("\n".join(map(json.dumps, lines)).encode()))
    assert result.created_tasks == 3
    labels = [hh(f"Question {i} {TRICKY}?", f"Better {i} {TRICKY}", f"Worse {i}") for i in range(3)]
    prompts_import(project=project, fileobj=io.BytesIO("\n".join(map(json.dumps, labels)).encode()))
    return project


def built(task_id: int) -> str:
    """The list as the export builds it without a stored one (export_fast._shown: the reference's way)."""
    return export_fast._shown({task_id})[task_id]


def live_sql(task_id: int) -> str:
    """The list as PostgreSQL builds it from the links (export_sql.raw_sql's fallback)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT '[' || array_to_string(ARRAY(SELECT '{\"id\": ' || r.id || ', \"text\": ' || to_json(r.text)::text "
            "|| '}' FROM annotation_taskresponse tr JOIN annotation_response r ON r.id = tr.response_id "
            "WHERE tr.task_id = %s ORDER BY tr.position), ', ') || ']'", [task_id])
        return cursor.fetchone()[0]


def stored(task: Task) -> str | None:
    return ShownResponses.objects.filter(task=task).values_list("json", flat=True).first()


def raw_export_is_the_reference(project) -> str:
    scope = export_scope(project=project, fmt="raw", filters=None)
    expected = "".join(reference_lines(project=project, fmt="raw", scope=scope))
    assert "".join(exporters.export_lines(project=project, fmt="raw")) == expected
    assert b"".join(exporters.export_blocks(project=project, fmt="raw")) == expected.encode()
    return expected


def test_the_list_is_json_dumps_of_the_links_in_display_order():
    assert shown_json([(1, 9, 'b "x"'), (0, 7, "a\n")]) == '[{"id": 7, "text": "a\\n"}, {"id": 9, "text": "b \\"x\\""}]'
    assert shown_columns([5, 5, 6, 6, 6], [1, 2, 3, 4, 5], [1, 0, 2, 0, 1], ["p", "q", "r", "s", "t"]) == (
        [5, 6], ['[{"id": 2, "text": "q"}, {"id": 1, "text": "p"}]',
                 '[{"id": 4, "text": "s"}, {"id": 5, "text": "t"}, {"id": 3, "text": "r"}]'],
    )


def test_an_import_stores_each_comparisons_list_as_the_export_builds_it(imported):
    postgresql_only()
    comparisons = Task.objects.filter(project=imported, kind=Task.Kind.COMPARISON)
    assert comparisons.count() == 5
    for task in comparisons:
        assert stored(task) == built(task.pk) == live_sql(task.pk)
    assert not ShownResponses.objects.filter(task__kind=Task.Kind.DEMONSTRATION).exists()
    expected = raw_export_is_the_reference(imported)
    assert expected.count('"external_source": "hh-rlhf"') == 3 and "😀" in expected


def test_a_change_to_a_tasks_links_or_texts_drops_its_list_and_nothing_else_does(imported):
    postgresql_only()
    # The raw export shows the labelled ones (the HH-RLHF rows); the native ones have no annotation.
    two, four, swapped, edited, deleted = Task.objects.filter(project=imported, kind=Task.Kind.COMPARISON).order_by("id")
    links = list(TaskResponse.objects.filter(task=swapped).order_by("position"))

    # A reward score (active sampling's bulk update) and a response's other columns change no list.
    for link in links:
        link.reward_score = 0.5
    TaskResponse.objects.bulk_update(links, ["reward_score"])
    Response.objects.filter(pk=links[0].response_id).update(source=Response.Source.MODEL)
    assert ShownResponses.objects.filter(task__project=imported).count() == 5

    # Swapping the two display positions drops that task's list, and only that one.
    first, second = links
    TaskResponse.objects.filter(pk=first.pk).update(position=99)
    TaskResponse.objects.filter(pk=second.pk).update(position=first.position)
    TaskResponse.objects.filter(pk=first.pk).update(position=second.position)
    assert stored(swapped) is None and ShownResponses.objects.filter(task__project=imported).count() == 4
    assert built(swapped.pk).startswith(f'[{{"id": {second.response_id}, ')
    raw_export_is_the_reference(imported)

    # A response's new text drops the list of its task.
    Response.objects.filter(pk=TaskResponse.objects.filter(task=edited).first().response_id).update(text="Changed.")
    assert stored(edited) is None
    assert '"text": "Changed."' in raw_export_is_the_reference(imported)

    # A response deleted (its link goes with it), and a link added, drop theirs.
    gone = TaskResponse.objects.filter(task=deleted).first().response
    gone.delete()
    added = Response.objects.create(prompt=four.prompt, text="Added later.", source=Response.Source.IMPORT)
    TaskResponse.objects.create(task=four, response=added, position=5)
    assert stored(deleted) is None and stored(four) is None
    assert list(ShownResponses.objects.filter(task__project=imported).values_list("task", flat=True)) == [two.pk]
    assert gone.text not in raw_export_is_the_reference(imported)
    assert "Added later." in built(four.pk)


def test_a_deleted_task_takes_its_list_with_it(imported):
    postgresql_only()
    task = Task.objects.filter(project=imported, kind=Task.Kind.COMPARISON).first()
    assert stored(task) is not None
    task.delete()
    assert not ShownResponses.objects.filter(task_id=task.pk).exists()


def test_a_reimport_that_changes_the_responses_stores_the_new_tasks_list():
    postgresql_only()
    project = ProjectFactory()
    line = {"id": "resp", "prompt": "Pick one", "responses": ["old A", "old B"]}
    prompts_import(project=project, fileobj=io.BytesIO(json.dumps(line).encode()))
    line["responses"] = ["new A", "new B", f"new {TRICKY}"]
    prompts_import(project=project, fileobj=io.BytesIO(json.dumps(line).encode()), mode="update")
    task = Task.objects.get(project=project)
    assert stored(task) == built(task.pk) == live_sql(task.pk)
    assert "new A" in stored(task) and ShownResponses.objects.filter(task__project=project).count() == 1
