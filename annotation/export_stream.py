"""Reading an export's rows fast: the driver's tuples, a batch at a time, from a server-side cursor.

On PostgreSQL the cursor is declared inside a transaction. Outside one, Django declares it WITH
HOLD (so it can outlive a commit), and PostgreSQL then runs the whole query and stores its result
before the first row comes back: 20 s of nothing on a big project, and the whole result on disk.
Inside a transaction the cursor is a plain one: the first batch comes as soon as the query plan
yields it, and only one batch is in memory at a time. The transaction also turns PostgreSQL's JIT
off (SET LOCAL): the planner's cost for a whole big export passes the JIT thresholds, and
compiling the plan took 0.6 s before the first row, for a query whose rows are index lookups.
It turns parallel workers off too: each batch's lookup of a few thousand ids by index took 24 ms
with two workers to start and gather, 5 ms without.

The rows are the database driver's own values, with no ORM conversion. On PostgreSQL that means
jsonb columns arrive as their JSON text (Django tells psycopg not to parse them), which the fast
writers pass through as they are. Other databases (SQLite in development) read the same query
through the ORM, which converts each column, and json_text() encodes the parsed JSON again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import nullcontext

from django.db import connection, transaction
from django.db.models import QuerySet

from .export_halves import halves, text_as_bytes

BATCH_ROWS = 2000
# The first batch is smaller, so the first lines leave sooner (a batch costs its rows' index lookups).
FIRST_BATCH_ROWS = 200
# For the export's transaction (or the caller's, see row_batches): no JIT, no parallel workers (module doc).
_PLANNER = "SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0"
# A wrapped export in its own transaction reads past its first batch with two backends (export_halves.py).
READ_IN_HALVES = True


def raw_rows() -> bool:
    """True where rows come straight from the driver (PostgreSQL): JSON columns are then JSON text."""
    return connection.vendor == "postgresql"


def row_batches(
    queryset: QuerySet, *, batch_rows: int = BATCH_ROWS, wrap: Callable[[str, list], tuple[str, list]] | None = None,
    two_backends: bool = False, binary: bool = False,
) -> Iterator[list[tuple]]:
    """The rows of a values_list() queryset, batch_rows at a time (the first batch FIRST_BATCH_ROWS at most).

    On PostgreSQL, `wrap` (if given) turns the queryset's SQL and parameters into the query that
    is read instead (export_sql.py: a SELECT around it that builds each line and orders the rows);
    elsewhere the queryset itself is read, so it must then give the columns the wrapped query
    gives. The SQL given to `wrap` has no ORDER BY: with one, PostgreSQL plans the inner query on
    its own, for all its rows (a sort: 3 s before the first row on 200,000), instead of as one
    query whose first rows come first.

    The transaction is opened when the first batch is asked for and ends with the last one (or
    when the caller drops the generator). Inside a caller's transaction (a run's snapshot is
    frozen in one) the cursor is already in a transaction, so none is opened: no savepoint to
    send, and a caller that stops reading early leaves its transaction usable (an atomic block
    left by GeneratorExit would mark it for rollback). The planner settings then last until the
    caller's transaction ends.

    With two_backends, a wrapped query (its first column the id) in a transaction of its own is
    read past its second batch, if that one was full, by two backends at once (export_halves.py);
    the transaction is then REPEATABLE READ, so that the second backend can share its snapshot.
    Only the streamed HTTP export asks for it: a run's snapshot freeze writes its progress and
    reads the run's status (a cancel) in the same connection while it reads the export, which
    needs READ COMMITTED. Inside a caller's transaction a second connection would not see the
    caller's own writes, so one cursor reads it all there too.

    With binary, text columns come from PostgreSQL as the bytes it sent (UTF-8: Django's
    connection sets client_encoding), not decoded into str (text_as_bytes); other databases give
    their str.
    """
    first = min(batch_rows, FIRST_BATCH_ROWS)
    if not raw_rows():
        rows = queryset.iterator(chunk_size=batch_rows)
        size = first
        while batch := _take(rows, size):
            yield batch
            size = batch_rows
        return
    if wrap is None:
        sql, params = queryset.query.sql_with_params()
    else:
        sql, params = wrap(*_unordered_sql(queryset))
    in_halves = two_backends and READ_IN_HALVES and wrap is not None and not connection.in_atomic_block
    own = nullcontext() if connection.in_atomic_block else transaction.atomic()
    with own, connection.chunked_cursor() as cursor:
        with connection.cursor() as settings:
            settings.execute(("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; " if in_halves else "") + _PLANNER)
        if binary:
            text_as_bytes(cursor.cursor)
        cursor.execute(sql, params)
        size, read = first, 0
        while batch := cursor.fetchmany(size):
            yield batch
            read += 1
            if in_halves and read == 2 and len(batch) == batch_rows:
                cursor.close()  # a full second batch: a big export, worth a second connection
                yield from halves(sql=sql, params=params, after=batch[-1][0], batch_rows=batch_rows, planner=_PLANNER,
                                  binary=binary)
                return
            size = batch_rows


def _unordered_sql(queryset: QuerySet) -> tuple[str, list]:
    sql, params = queryset.order_by().query.sql_with_params()
    return sql, list(params)


def rows_by_ids(*, sql: str, ids: list[int], orm: Callable[[], QuerySet]) -> list[tuple]:
    """The rows of a small lookup by ids, as the same kind of values as row_batches gives.

    On PostgreSQL `sql` runs, with `= ANY(%s)` taking `ids` as one array (planning an IN list of
    thousands of placeholders cost 10 ms a batch, and building it as a queryset more); elsewhere
    the queryset `orm()` makes, which must select the same columns.
    """
    if not raw_rows():
        return list(orm())
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids])
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
