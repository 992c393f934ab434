"""Reading an export's rows fast: the driver's tuples, a batch at a time, from a server-side cursor.

On PostgreSQL the cursor is declared inside a transaction. Outside one, Django declares it WITH
HOLD (so it can outlive a commit), and PostgreSQL then runs the whole query and stores its result
before the first row comes back: 20 s of nothing on a big project, and the whole result on disk.
Inside a transaction the cursor is a plain one: the first batch comes as soon as the query plan
yields it, and only one batch is in memory at a time.

The rows are the database driver's own values, with no ORM conversion. On PostgreSQL that means
jsonb columns arrive as their JSON text (Django tells psycopg not to parse them), which the fast
writers pass through as they are. Other databases (SQLite in development) read the same query
through the ORM, which converts each column, and json_text() encodes the parsed JSON again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from django.db import connection, transaction
from django.db.models import QuerySet

BATCH_ROWS = 2000


def raw_rows() -> bool:
    """True where rows come straight from the driver (PostgreSQL): JSON columns are then JSON text."""
    return connection.vendor == "postgresql"


def row_batches(queryset: QuerySet, *, batch_rows: int = BATCH_ROWS) -> Iterator[list[tuple]]:
    """The rows of a values_list() queryset, batch_rows at a time.

    The transaction is opened when the first batch is asked for and ends with the last one (or
    when the caller drops the generator). savepoint=False: inside a caller's transaction nothing
    more is sent; a read has nothing to roll back.
    """
    if not raw_rows():
        rows = queryset.iterator(chunk_size=batch_rows)
        while batch := _take(rows, batch_rows):
            yield batch
        return
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(savepoint=False), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(batch_rows):
            yield batch


def all_rows(queryset: QuerySet) -> list[tuple]:
    """A small values_list() queryset's rows in one read, as the same kind of values as row_batches gives."""
    if not raw_rows():
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def json_text() -> Callable[[object], str]:
    """How a JSON column's value becomes JSON text: as it is from the driver, encoded again after the ORM."""
    if raw_rows():
        return _as_is
    encoder = json.JSONEncoder(ensure_ascii=False)
    return encoder.encode


def _as_is(value):
    return value


def _take(rows: Iterator, n: int) -> list:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == n:
            break
    return batch
