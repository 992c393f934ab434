"""On PostgreSQL, a task's display positions also carry their response id, so the raw export reads them from the index.

The raw export lists each comparison's shown responses (export_sql.raw_sql): for every annotation,
the task's rows of annotation_taskresponse in position order, then each response's text. The
unique (task_id, position) index found the rows, but each visit also read the table's page for
the response id: 5 buffer reads a task, 3 from the index alone (an index-only scan, where the
visibility map allows it). The constraint keeps its name and what it enforces; its index now
INCLUDEs response_id, which adds no index entry. The new index is built before the old
constraint goes, and takes its place under the same name.

SQLite builds no unique constraint with INCLUDE (Django would drop the constraint there), so the
model declares the plain constraint and this runs on PostgreSQL only.
"""

from django.db import migrations

CONSTRAINT = "task_response_position_unique"
COVERING = "task_response_position_unique_covering"

FORWARD = f"""
CREATE UNIQUE INDEX {COVERING} ON annotation_taskresponse (task_id, position) INCLUDE (response_id);
ALTER TABLE annotation_taskresponse DROP CONSTRAINT {CONSTRAINT};
ALTER TABLE annotation_taskresponse ADD CONSTRAINT {CONSTRAINT} UNIQUE USING INDEX {COVERING};
"""
BACKWARD = f"""
CREATE UNIQUE INDEX {COVERING} ON annotation_taskresponse (task_id, position);
ALTER TABLE annotation_taskresponse DROP CONSTRAINT {CONSTRAINT};
ALTER TABLE annotation_taskresponse ADD CONSTRAINT {CONSTRAINT} UNIQUE USING INDEX {COVERING};
"""


def _run(schema_editor, sql: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0017_import_index_trim"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: _run(schema_editor, FORWARD),
            lambda apps, schema_editor: _run(schema_editor, BACKWARD),
        ),
    ]
