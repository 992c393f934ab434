"""A big export read by two PostgreSQL backends at once: even ids on this connection, odd ids on a second one.

PostgreSQL runs one query on one core, and an export's query is most of an export's time
(index lookups per row: task, prompt, responses). Split on the id's parity, each backend does half
the lookups, on its own core where one is free, and this process merges the two id-ordered
streams back into one. Both read the same data: the export's transaction is REPEATABLE READ, its
snapshot is exported (pg_export_snapshot) and the second connection's transaction imports it
(SET TRANSACTION SNAPSHOT) before its first query, so the two halves are one snapshot's rows.

Each connection is read by a thread of its own: psycopg releases the interpreter lock while it
waits for the server, so both servers work while this process merges and writes. A thread keeps
one batch queued, so memory stays flat. Stopping early (a client that goes away) stops
the threads and closes the second connection; so does an error in either, which is raised here.
"""

from __future__ import annotations

import queue
import threading
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterator
from operator import itemgetter

from django.db import connection
from psycopg2.extensions import BYTES, register_type

_ID = itemgetter(0)
_QUEUED_BATCHES = 1
_ORDER = " ORDER BY k.id"


def half_sql(sql: str, params: list, *, after: int, parity: int) -> tuple[str, list]:
    """The wrapped export query (export_sql.py: `... FROM (...) k ORDER BY k.id`) for ids past `after` of one parity."""
    if not sql.endswith(_ORDER):
        raise ValueError("An export query read in halves must end in ORDER BY k.id.")
    return f"{sql[:-len(_ORDER)]} WHERE k.id > %s AND k.id %% 2 = %s{_ORDER}", [*params, after, parity]


def halves(
    *, sql: str, params: list, after: int, batch_rows: int, planner: str, binary: bool = False
) -> Iterator[list[tuple]]:
    """The rows of `sql` (first column the id) past id `after`, in id order, read by two backends; in batches.

    binary: text columns as bytes (text_as_bytes), as row_batches read the first batches.

    Call inside the export's own REPEATABLE READ transaction, before which nothing else ran in it
    but the first batch's read (so the exported snapshot is the one that read saw).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
    second = connection.get_new_connection(connection.get_connection_params())
    readers: list[_Reader] = []
    try:
        second.set_session(isolation_level="REPEATABLE READ", autocommit=False)
        with second.cursor() as settings:
            settings.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
            settings.execute(planner)
        for parity, conn in ((0, connection.connection), (1, second)):
            cursor = conn.cursor(name=f"export_half_{uuid.uuid4().hex}", withhold=False)
            if binary:
                text_as_bytes(cursor)
            cursor.execute(*half_sql(sql, params, after=after, parity=parity))
            readers.append(_Reader(cursor, batch_rows))
        yield from _merged([reader.next_batch for reader in readers])
    finally:
        for reader in readers:
            reader.stop()
        for reader in readers:
            reader.cursor.close()
        second.close()


def text_as_bytes(cursor) -> None:
    """Make a psycopg2 cursor give text columns as bytes: a line passed through to an HTTP response as it came.

    psycopg2 decodes every text value into a str, and the response encodes it back: for a raw
    export's 700-byte lines, a third of the web process's time (decoding, joining str, encoding).
    """
    register_type(BYTES, cursor)


class _Reader:
    """A thread that reads one cursor a batch at a time into a short queue."""

    def __init__(self, cursor, batch_rows: int):
        self.cursor = cursor
        self.batches: queue.Queue = queue.Queue(maxsize=_QUEUED_BATCHES)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(batch_rows,), daemon=True)
        self.thread.start()

    def _read(self, batch_rows: int) -> None:
        try:
            while not self.stopping.is_set():
                batch = self.cursor.fetchmany(batch_rows)
                self.batches.put(batch)
                if not batch:
                    return
        except BaseException as error:  # raised in the reading thread by next_batch
            self.batches.put(error)

    def next_batch(self) -> list[tuple]:
        """The next batch ([] at the end); an error of the reading thread is raised here."""
        batch = self.batches.get()
        if isinstance(batch, BaseException):
            raise batch
        return batch

    def stop(self) -> None:
        """Stop the thread: it ends after the read in progress, once the queue has room for it."""
        self.stopping.set()
        while self.thread.is_alive():
            try:
                self.batches.get(timeout=0.05)
            except queue.Empty:
                pass


def _merged(sources: list[Callable[[], list[tuple]]]) -> Iterator[list[tuple]]:
    """Id-ordered batches from id-ordered batch sources with no id in common: each batch as soon as it is certain.

    A row can leave once every source still reading has read past its id. The source that is
    behind is read next; sorting what is pending merges the sorted runs in one linear pass.
    """
    last = [float("-inf")] * len(sources)
    reading = set(range(len(sources)))
    pending: list[tuple] = []
    while reading:
        behind = min(last[i] for i in reading)
        for i in [i for i in reading if last[i] == behind]:
            batch = sources[i]()
            if batch:
                pending += batch
                last[i] = _ID(batch[-1])
            else:
                reading.discard(i)
        certain = min((last[i] for i in reading), default=float("inf"))
        pending.sort(key=_ID)
        cut = bisect_right(pending, certain, key=_ID)
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
