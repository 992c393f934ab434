"""Writing an import's valid rows: prompts, tasks, their responses and imported labels, a batch at a time.

annotation/importers.py reads and checks the lines; BatchWriter stores them inside the import's
transaction, through rows_insert (bulk_insert.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import connection

from . import reimport
from .bulk_insert import rows_insert
from .gold import gold_with_ids
from .models import Annotation, Project, Prompt, Response, Task, TaskResponse

if TYPE_CHECKING:
    from .importers import ImportResult, ImportRow, LineReports


class BatchWriter:
    """Writes valid rows a batch at a time; after the first error, only their prompts, to check ids.

    A duplicate id within the file is caught in the batch, or, across batches, because the
    earlier row is already in the database with a pk from this import (the project row is
    locked, so no other import adds rows to it meanwhile). After the first error the writing goes
    on, prompts only, so that the database still catches later duplicates while memory holds one
    batch; the transaction rolls back anyway.
    """

    def __init__(
        self, *, project: Project, result: ImportResult, errors: LineReports, update: bool = False, batch_size: int
    ):
        self.project = project
        self.result = result
        self.errors = errors
        self.update = update
        self.batch_size = batch_size
        self.batch: dict[str, ImportRow] = {}
        self.first_pk: int | None = None
        self.rng = random.Random()

    def add(self, row: ImportRow) -> None:
        earlier = self.batch.get(row.external_id)
        if earlier is not None:
            self.errors.add(row.line, f"duplicate id '{row.external_id[:50]}' (also on line {earlier.line})")
            return
        self.batch[row.external_id] = row
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        rows, self.batch = list(self.batch.values()), {}
        existing = _stored_prompt_ids(self.project.pk, [r.external_id for r in rows])
        new, stored = [], []
        for row in rows:
            pk = existing.get(row.external_id)
            if pk is None:
                new.append(row)
            elif self.first_pk is not None and pk >= self.first_pk:
                self.errors.add(row.line, f"duplicate id '{row.external_id[:50]}' (also on an earlier line)")
            else:
                stored.append((row, pk))
        if stored and not self.errors.count:
            reimport.stored_lines_handle(
                project=self.project, lines=stored, update=self.update, result=self.result,
                tasks_create=self._tasks_create,
            )
        if new:
            self._write(new)

    def _write(self, rows: list[ImportRow]) -> None:
        with _foreign_keys_checked_per_statement():
            self._write_checked(rows)

    def _write_checked(self, rows: list[ImportRow]) -> None:
        prompt_ids = rows_insert(Prompt, {
            "project": [self.project.pk] * len(rows),
            "messages": [r.messages for r in rows],
            "external_id": [r.external_id for r in rows],
            "metadata": [r.metadata for r in rows],
        })
        if self.first_pk is None:
            self.first_pk = min(prompt_ids)
        if self.errors.count:
            return  # the file is rejected: the prompts only hold the ids for the duplicate check
        self.result.created_prompts += len(prompt_ids)
        self.result.created_tasks += self._tasks_create(rows, prompt_ids)

    def _tasks_create(self, rows: list, prompt_ids: list[int]) -> int:
        """Each row's task (a comparison, with its responses in a random display order, when it has any).

        A gold row's task is a gold task; its ranking's indexes become the ids of the responses
        made here. Gold or not, the display order is drawn the same way. The rows go in through
        rows_insert (bulk_insert.py), a statement per table and batch.
        """
        project = self.project
        owners = [prompt_id for row, prompt_id in zip(rows, prompt_ids) for _ in row.responses]
        created = iter(rows_insert(Response, {
            "prompt": owners,
            "text": [text for row in rows for text in row.responses],
            "source": [Response.Source.IMPORT] * len(owners),
        }))
        response_ids = [[next(created) for _ in row.responses] for row in rows]
        counted = 0 if self.result.labels == "hide" else 1  # what one imported label adds to its task's done
        done = [counted * len(row.labels) for row in rows]
        task_ids = rows_insert(Task, {
            "project": [project.pk] * len(rows),
            "prompt": list(prompt_ids),
            "kind": [Task.Kind.COMPARISON if row.responses else Task.Kind.DEMONSTRATION for row in rows],
            "required": [project.overlap] * len(rows),
            "done": done,
            "status": [Task.Status.DONE if n >= project.overlap else Task.Status.OPEN for n in done],
            "is_gold": [row.gold is not None for row in rows],
            "gold": [gold_with_ids(row.gold, ids) for row, ids in zip(rows, response_ids)],
        })
        links: dict[str, list] = {"task": [], "response": [], "position": []}
        for task_id, ids in zip(task_ids, response_ids):
            positions = list(range(len(ids)))
            self.rng.shuffle(positions)
            links["task"].extend([task_id] * len(ids))
            links["response"].extend(ids)
            links["position"].extend(positions)
        rows_insert(TaskResponse, links, returning=False)
        self._labels_create(rows, task_ids, response_ids)
        return len(task_ids)

    def _labels_create(self, rows: list, task_ids: list[int], response_ids: list[list[int]]) -> None:
        """The rows' imported labels as annotations of their tasks, from the external source and no labeler."""
        labelled = [(task_id, ids, label) for row, task_id, ids in zip(rows, task_ids, response_ids) for label in row.labels]
        if not labelled:
            return
        count = len(labelled)
        rows_insert(Annotation, {
            "task": [task_id for task_id, _, _ in labelled],
            "project": [self.project.pk] * count,
            "labeler": [None] * count,
            "external_source": [self.result.source] * count,
            "external_hidden": [self.result.labels == "hide"] * count,
            "kind": [
                Annotation.Kind.COMPARISON if label.ranking is not None else Annotation.Kind.DEMONSTRATION
                for _, _, label in labelled
            ],
            "ranking": [
                [[ids[i] for i in group] for group in label.ranking] if label.ranking is not None else []
                for _, ids, label in labelled
            ],
            "strength": [label.strength for _, _, label in labelled],
            "text": [label.text or "" for _, _, label in labelled],
        }, returning=False)
        self.result.created_labels += count


def _stored_prompt_ids(project_id: int, external_ids: list[str]) -> dict[str, int]:
    """{external id: prompt pk} for the ids the project holds already.

    On PostgreSQL the ids travel as one array parameter, probed through the unique (project,
    external_id) index: the ORM's IN list prepares a thousand parameters one by one per batch.
    """
    if connection.vendor != "postgresql":
        return dict(
            Prompt.objects.filter(project_id=project_id, external_id__in=external_ids).values_list("external_id", "pk")
        )
    meta, quote = Prompt._meta, connection.ops.quote_name
    external_id, project = quote(meta.get_field("external_id").column), quote(meta.get_field("project").column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {external_id}, {quote(meta.pk.column)} FROM {quote(meta.db_table)} "
            f"WHERE {project} = %s AND {external_id} = ANY(%s)",
            [project_id, external_ids],
        )
        return dict(cursor.fetchall())


@contextmanager
def _foreign_keys_checked_per_statement() -> Iterator[None]:
    """PostgreSQL checks the batch's foreign keys as each table's rows go in, not all at commit.

    The keys are DEFERRABLE INITIALLY DEFERRED (Django's), so by default the server queues a
    check per key and row until the commit: about twenty per HH-RLHF line, a queue that grows
    with the file in the server's memory and is then worked off alone at the end, while the
    import's reading thread has nothing left to overlap it with. Checked per statement, the
    queue holds one batch, and the checks run while the next lines are parsed. The batch's
    tables go in parents first, so every check passes as it comes; a failure is an
    IntegrityError either way, and the transaction rolls back.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # as the rest of the transaction expects
