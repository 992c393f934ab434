"""Progress counters: on PostgreSQL, inserted tasks are counted once per statement instead of once per row.

The row trigger of 0009 upserted a shard's counter row for every inserted task. An import writes
its tasks in one transaction, so each of a project's 64 counter rows was updated again and again
inside it, and every update walked the versions the transaction had already left behind: a batch
of 1,000 tasks cost 0.06 s of PostgreSQL CPU at the start of a 30,000-row import and 0.32 s at its
end. Now an INSERT statement's tasks are summed per (project, kind, shard) from its transition
table and added in one upsert per shard, and the row trigger keeps UPDATE and DELETE (a submit's
in-place update is unchanged). SQLite keeps its row triggers: it has no transition tables.
"""

import importlib

from django.db import migrations

progress = importlib.import_module("annotation.migrations.0009_progress_counters")

FORWARD = f"""
CREATE FUNCTION annotation_progress_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO annotation_progresscounter {progress.COLUMNS}
  SELECT project_id, kind, id % {progress.SHARDS}, COUNT(*), COUNT(*) FILTER (WHERE status = 'done'), SUM(done),
         SUM(required)
  FROM inserted_tasks WHERE NOT is_gold GROUP BY project_id, kind, id % {progress.SHARDS}
  ON CONFLICT (project_id, kind, shard) DO UPDATE SET {progress.UPSERT_SET};
  RETURN NULL;
END $$;
DROP TRIGGER annotation_progress_task ON annotation_task;
CREATE TRIGGER annotation_progress_task AFTER DELETE OR UPDATE OF done, status, required, kind, is_gold,
  project_id ON annotation_task FOR EACH ROW EXECUTE FUNCTION annotation_progress_apply();
CREATE TRIGGER annotation_progress_task_inserts AFTER INSERT ON annotation_task
  REFERENCING NEW TABLE AS inserted_tasks FOR EACH STATEMENT EXECUTE FUNCTION annotation_progress_insert();
"""
BACKWARD = """
DROP TRIGGER annotation_progress_task_inserts ON annotation_task;
DROP FUNCTION annotation_progress_insert();
DROP TRIGGER annotation_progress_task ON annotation_task;
CREATE TRIGGER annotation_progress_task AFTER INSERT OR DELETE OR UPDATE OF done, status, required, kind, is_gold,
  project_id ON annotation_task FOR EACH ROW EXECUTE FUNCTION annotation_progress_apply();
"""


def _run(schema_editor, sql: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(sql)  # without parameters, so that the modulo's % is not taken for a placeholder


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0013_external_labels"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: _run(schema_editor, FORWARD),
            lambda apps, schema_editor: _run(schema_editor, BACKWARD),
        ),
    ]
