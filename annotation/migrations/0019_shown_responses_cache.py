"""Each comparison task's shown-responses list, stored whole for the raw export, and the triggers that drop it.

The raw export lists, for every comparison annotation, its task's responses in display order. It
built the list per annotation from the task's links and each response's text: 40% of its query's
time. ShownResponses keeps the list's JSON text, written with the links (annotation/shown_responses.py).

On PostgreSQL, statement triggers keep it from ever being stale: a statement that inserts,
deletes or changes (task, response or position of) a link, or changes a response's text,
deletes the rows of the tasks it touched, in its own transaction. A row is only ever written in
the transaction that links its task's responses, after the links, so no row comes back once
dropped; the export then builds that task's list from the links. An update that changes none
of those columns (a reward score, a timestamp) drops nothing. SQLite gets the table only: its
export never reads it, and nothing writes it there.
"""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
CREATE FUNCTION annotation_shown_forget_links() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        DELETE FROM annotation_shownresponses WHERE task_id IN (SELECT task_id FROM changed_new);
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM annotation_shownresponses WHERE task_id IN (SELECT task_id FROM changed_old);
    ELSE
        DELETE FROM annotation_shownresponses WHERE task_id IN (
            SELECT unnest(ARRAY[o.task_id, n.task_id]) FROM changed_old o JOIN changed_new n ON n.id = o.id
            WHERE (o.task_id, o.response_id, o.position) IS DISTINCT FROM (n.task_id, n.response_id, n.position)
        );
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER annotation_shown_links_insert AFTER INSERT ON annotation_taskresponse
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION annotation_shown_forget_links();
CREATE TRIGGER annotation_shown_links_delete AFTER DELETE ON annotation_taskresponse
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION annotation_shown_forget_links();
CREATE TRIGGER annotation_shown_links_update AFTER UPDATE ON annotation_taskresponse
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION annotation_shown_forget_links();

CREATE FUNCTION annotation_shown_forget_texts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM annotation_shownresponses WHERE task_id IN (
        SELECT link.task_id FROM changed_old o JOIN changed_new n ON n.id = o.id
        JOIN annotation_taskresponse link ON link.response_id = n.id
        WHERE o.text IS DISTINCT FROM n.text
    );
    RETURN NULL;
END
$$;
CREATE TRIGGER annotation_shown_texts_update AFTER UPDATE ON annotation_response
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION annotation_shown_forget_texts();
"""

BACKWARD = """
DROP TRIGGER annotation_shown_texts_update ON annotation_response;
DROP FUNCTION annotation_shown_forget_texts();
DROP TRIGGER annotation_shown_links_update ON annotation_taskresponse;
DROP TRIGGER annotation_shown_links_delete ON annotation_taskresponse;
DROP TRIGGER annotation_shown_links_insert ON annotation_taskresponse;
DROP FUNCTION annotation_shown_forget_links();
"""


def _run(schema_editor, sql: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0018_shown_responses_index_only"),
    ]

    operations = [
        migrations.CreateModel(
            name="ShownResponses",
            fields=[
                ("task", models.OneToOneField(
                    db_constraint=False, on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                    related_name="+", serialize=False, to="annotation.task",
                )),
                ("json", models.TextField()),
            ],
        ),
        migrations.RunPython(
            lambda apps, schema_editor: _run(schema_editor, FORWARD),
            lambda apps, schema_editor: _run(schema_editor, BACKWARD),
        ),
    ]
