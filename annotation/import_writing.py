"""Writing an import's valid rows: prompts, tasks, their responses and imported labels, a batch at a time.

annotation/importers.py reads and checks the lines; BatchWriter stores them inside the import's
transaction, through rows_insert (bulk_insert.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db import connection

from . import reimport
from .bulk_insert import copy_prepared, copy_run, ids_reserve, rows_insert
from .gold import gold_with_ids
from .models import Annotation, Project, Prompt, Response, Task, TaskResponse
from .shown_responses import shown_copy, shown_store

if TYPE_CHECKING:
    from .importers import ImportResult, ImportRow, LineReports


class BatchWriter:
    """Writes valid rows a batch at a time; after the first error, only their prompts, to check ids.

    A duplicate id within the file is caught in the batch, or, across batches, because the
    earlier row is already in the database with a pk from this import (the project row is
    locked, so no other import adds rows to it meanwhile), or in the batch still waiting to be
    sent (below). After the first error the writing goes on, prompts only, so that the database
    still catches later duplicates while memory holds two batches; the transaction rolls back anyway.

    On PostgreSQL the batches overlap: a batch's keys are reserved from the sequences at once,
    its COPY text is encoded on a second thread (import-encode), and it is sent when the next
    batch is ready, so that the server stores one batch while Python encodes the next (the
    driver lets other threads run while it waits). Use it as a context manager: leaving it sends
    nothing more but waits for the encoding thread; finish() sends the last batch.
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
        self.overlapped = connection.vendor == "postgresql"
        self.encoder: ThreadPoolExecutor | None = None
        self.pending: Future | None = None  # the copies of the batch encoded last, not sent yet
        self.pending_ids: dict[str, int] = {}  # that batch's external ids (not in the database yet), with lines
        self.checking = False  # whether the foreign keys are checked per statement now (PostgreSQL)

    def __enter__(self) -> BatchWriter:
        if self.overlapped:
            self.encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-encode")
        return self

    def __exit__(self, *exc) -> None:
        if self.encoder is not None:
            self.encoder.shutdown(wait=True)
            self.encoder = None

    def add(self, row: ImportRow) -> None:
        earlier = self.batch.get(row.external_id)
        if earlier is not None:
            self.errors.add(row.line, f"duplicate id '{row.external_id[:50]}' (also on line {earlier.line})")
            return
        self.batch[row.external_id] = row
        if len(self.batch) >= self.batch_size:
            self.flush()

    def finish(self) -> None:
        """Write what is left: the rows gathered and the batch waiting to be sent."""
        self.flush()
        self._send_pending()
        self._checks_deferred()

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch, rows = self.batch, {}, []
        for row in batch.values():
            earlier = self.pending_ids.get(row.external_id)
            if earlier is not None:
                self.errors.add(row.line, f"duplicate id '{row.external_id[:50]}' (also on line {earlier})")
            else:
                rows.append(row)
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
            self._send_pending()
            self._checks_deferred()
            reimport.stored_lines_handle(
                project=self.project, lines=stored, update=self.update, result=self.result,
                tasks_create=self._tasks_create,
            )
        if new:
            if self.overlapped:
                self._write_overlapped(new)
            else:
                self._write(new)

    def _write_overlapped(self, rows: list[ImportRow]) -> None:
        """Reserve the rows' keys, encode their COPYs on the encoding thread, and send the batch before."""
        only_prompts = bool(self.errors.count)  # the file is rejected: the prompts only hold the ids
        responses = 0 if only_prompts else sum(len(row.responses) for row in rows)
        prompt_ids, response_ids, task_ids = ids_reserve(
            [(Prompt, len(rows)), (Response, responses), (Task, 0 if only_prompts else len(rows))]
        )
        if self.first_pk is None:
            self.first_pk = min(prompt_ids)
        if not only_prompts:
            self.result.created_prompts += len(rows)
            self.result.created_tasks += len(rows)
            self.result.created_labels += sum(len(row.labels) for row in rows)
        encoded = self.encoder.submit(
            self._copies, rows, prompt_ids, response_ids, task_ids, connection.ops.quote_name,
        )
        try:
            self._send_pending()
        finally:
            self.pending = encoded
            self.pending_ids = {row.external_id: row.line for row in rows}

    def _send_pending(self) -> None:
        if self.pending is None:
            return
        copies, self.pending, self.pending_ids = self.pending.result(), None, {}
        if not self.checking:
            _constraints_set("IMMEDIATE")  # see _foreign_keys_checked_per_statement; left so between batches
            self.checking = True
        for copy in copies:
            copy_run(copy)

    def _checks_deferred(self) -> None:
        """The foreign keys deferred to the commit again, as the rest of the transaction expects."""
        if self.checking:
            _constraints_set("DEFERRED")
            self.checking = False

    def _copies(self, rows: list, prompt_ids: list[int], response_ids: list[int], task_ids: list[int], quote):
        """The batch's COPYs, parents first, with the keys reserved for it (runs on the encoding thread)."""
        prompts = _prompt_columns(self.project, rows)
        prompts["messages"] = [r.messages if r.messages_json is None else r.messages_json for r in rows]
        copies = [copy_prepared(Prompt, prompts, ids=prompt_ids, quote=quote)]
        if not task_ids:
            return copies
        if response_ids:
            copies.append(copy_prepared(Response, _response_columns(rows, prompt_ids), ids=response_ids, quote=quote))
        created = iter(response_ids)
        response_ids = [[next(created) for _ in row.responses] for row in rows]
        columns = _task_columns(self.project, self.result, rows, prompt_ids, response_ids)
        copies.append(copy_prepared(Task, columns, ids=task_ids, quote=quote))
        links = _link_columns(self.rng, task_ids, response_ids)
        if links["task"]:
            copies.append(copy_prepared(TaskResponse, links, ids=None, quote=quote))
            copies.append(shown_copy(links, _link_texts(rows), quote=quote))  # after the links: shown_responses.py
        labels = _label_columns(self.project, self.result, rows, task_ids, response_ids)
        if labels["task"]:
            copies.append(copy_prepared(Annotation, labels, ids=None, quote=quote))
        return copies

    def _write(self, rows: list[ImportRow]) -> None:
        with _foreign_keys_checked_per_statement():
            self._write_checked(rows)

    def _write_checked(self, rows: list[ImportRow]) -> None:
        prompt_ids = rows_insert(Prompt, _prompt_columns(self.project, rows))
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
        rows_insert (bulk_insert.py), a statement per table and batch; a new batch's on PostgreSQL
        go through _copies instead, the same columns.
        """
        created = iter(rows_insert(Response, _response_columns(rows, prompt_ids)))
        response_ids = [[next(created) for _ in row.responses] for row in rows]
        task_ids = rows_insert(Task, _task_columns(self.project, self.result, rows, prompt_ids, response_ids))
        links = _link_columns(self.rng, task_ids, response_ids)
        rows_insert(TaskResponse, links, returning=False)
        shown_store(links, _link_texts(rows))
        labels = _label_columns(self.project, self.result, rows, task_ids, response_ids)
        rows_insert(Annotation, labels, returning=False)
        self.result.created_labels += len(labels["task"])
        return len(task_ids)


def _prompt_columns(project: Project, rows: list) -> dict[str, list]:
    return {
        "project": [project.pk] * len(rows),
        "messages": [r.messages for r in rows],
        "external_id": [r.external_id for r in rows],
        "metadata": [r.metadata for r in rows],
    }


def _response_columns(rows: list, prompt_ids: list[int]) -> dict[str, list]:
    owners = [prompt_id for row, prompt_id in zip(rows, prompt_ids) for _ in row.responses]
    return {
        "prompt": owners,
        "text": [text for row in rows for text in row.responses],
        "source": [Response.Source.IMPORT] * len(owners),
    }


def _task_columns(project: Project, result: ImportResult, rows: list, prompt_ids: list[int], response_ids: list):
    counted = 0 if result.labels == "hide" else 1  # what one imported label adds to its task's done
    done = [counted * len(row.labels) for row in rows]
    return {
        "project": [project.pk] * len(rows),
        "prompt": list(prompt_ids),
        "kind": [Task.Kind.COMPARISON if row.responses else Task.Kind.DEMONSTRATION for row in rows],
        "required": [project.overlap] * len(rows),
        "done": done,
        "status": [Task.Status.DONE if n >= project.overlap else Task.Status.OPEN for n in done],
        "is_gold": [row.gold is not None for row in rows],
        "gold": [gold_with_ids(row.gold, ids) for row, ids in zip(rows, response_ids)],
    }


def _link_columns(rng: random.Random, task_ids: list[int], response_ids: list) -> dict[str, list]:
    """Each task's responses with their display positions, in a random order per task."""
    links: dict[str, list] = {"task": [], "response": [], "position": []}
    for task_id, ids in zip(task_ids, response_ids):
        positions = list(range(len(ids)))
        rng.shuffle(positions)
        links["task"].extend([task_id] * len(ids))
        links["response"].extend(ids)
        links["position"].extend(positions)
    return links


def _link_texts(rows: list) -> list[str]:
    """Each link's response text, in _link_columns's order (the rows', each row's responses in turn)."""
    return [text for row in rows for text in row.responses]


def _label_columns(project: Project, result: ImportResult, rows: list, task_ids: list[int], response_ids: list):
    """The rows' imported labels as annotations of their tasks, from the external source and no labeler."""
    labelled = [
        (task_id, ids, label) for row, task_id, ids in zip(rows, task_ids, response_ids) for label in row.labels
    ]
    count = len(labelled)
    return {
        "task": [task_id for task_id, _, _ in labelled],
        "project": [project.pk] * count,
        "labeler": [None] * count,
        "external_source": [result.source] * count,
        "external_hidden": [result.labels == "hide"] * count,
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
    }


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
    _constraints_set("IMMEDIATE")
    yield
    _constraints_set("DEFERRED")  # as the rest of the transaction expects


def _constraints_set(mode: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET CONSTRAINTS ALL {mode}")
