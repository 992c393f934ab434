"""Storing each new comparison task's shown-responses list whole, for the raw export (models.ShownResponses).

The raw export writes a comparison's responses as `[{"id": 7, "text": "..."}, ...]` in display
order (export_sql.raw_sql). Whatever links a task's responses (an import's batch, a generation
job) also stores that text here, after the links and in the same transaction, so the export reads
one row per annotation instead of the task's links and each response's text. The text is
json.dumps's with ensure_ascii=False (json's C encoder), which is what PostgreSQL's
to_json(text) writes too: the export's own list, byte for byte (tests/annotation/test_shown_responses.py).

Only on PostgreSQL, whose triggers drop a row when its task's links or texts change (migration
0019); SQLite's export is made in Python and never reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from json.encoder import encode_basestring

from django.db import connection

from .bulk_insert import Copy, copy_prepared, copy_run
from .models import ShownResponses


def kept() -> bool:
    """Whether this database keeps the lists (PostgreSQL, whose triggers drop the stale ones)."""
    return connection.vendor == "postgresql"


def shown_json(links: Sequence[tuple[int, int, str]]) -> str:
    """The raw export's list for one task, from its links' (position, response id, text), in any order."""
    items = (f'{{"id": {response_id}, "text": {encode_basestring(text)}}}' for _, response_id, text in sorted(links))
    return "[" + ", ".join(items) + "]"


def shown_columns(tasks: Sequence[int], responses: Sequence[int], positions: Sequence[int], texts: Sequence[str]):
    """(task ids, list texts) for links given as parallel columns, each task's links next to each other."""
    task_ids: list[int] = []
    lists: list[str] = []
    start = 0
    for end in range(1, len(tasks) + 1):
        if end == len(tasks) or tasks[end] != tasks[start]:
            task_ids.append(tasks[start])
            lists.append(shown_json(list(zip(positions[start:end], responses[start:end], texts[start:end]))))
            start = end
    return task_ids, lists


def shown_copy(links: dict[str, list], texts: Sequence[str], *, quote: Callable[[str], str]) -> Copy | None:
    """The COPY of the lists of an import batch's links (bulk_insert columns task, response, position).

    texts: each link's response text, in the links' order. Send it after the links' own COPY:
    their insert trigger drops the rows of the tasks they link. Touches no database (it runs on
    the import's encoding thread).
    """
    if not links["task"]:
        return None
    task_ids, lists = shown_columns(links["task"], links["response"], links["position"], texts)
    return copy_prepared(ShownResponses, {"json": lists}, ids=task_ids, quote=quote)


def shown_store(links: dict[str, list], texts: Sequence[str]) -> None:
    """Store the lists of links just inserted (as shown_copy takes them), where this database keeps them."""
    if kept() and (copy := shown_copy(links, texts, quote=connection.ops.quote_name)) is not None:
        copy_run(copy)
