"""Reading an import file on a second thread while the import's own thread writes to the database.

An import spends its time in two places that need not wait for each other: Python reading,
parsing and checking lines, and PostgreSQL storing the previous batch. `read_ahead` runs the
reading on a thread and hands its events to the caller in the file's order, a chunk at a time,
so the next lines are parsed while the database works on the last batch (the driver releases the
GIL while it waits for the server).

Everything that changes state stays on the caller's thread: the reading thread only produces
events, including the line reports a reader makes (they arrive as REPORT events, in order, through
the `reports` object (a _Sender) the producer is given instead of the import's error list). A bounded queue
keeps memory at a few chunks whatever the file's size. An exception on the reading thread is
raised on the caller's thread at the point of the file where it happened; if the caller stops
early (an error, a rolled-back transaction), the reading thread stops too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

REPORT = "report"  # a reader's line report: (REPORT, line, text)
CHUNK = 256  # events handed over at a time
DEPTH = 16  # chunks read ahead at most: more than a batch, so the next one is read while the server stores one
_DONE = object()


class Reports(Protocol):
    """Where a reader reports a bad line: the import's error list, or the _Sender on the reading thread."""

    def add(self, line: int, text: str) -> None: ...


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


class _Stopped(BaseException):
    """The caller stopped reading: the reading thread ends quietly (a BaseException, so no reader catches it)."""


class _Sender:
    """The reading thread's side: events gather into chunks that go on the queue when full.

    Reports come through add(), between two records or in a run of bad lines, and count toward a
    chunk like any event, so a long run of bad lines is handed over as it is read, never gathered.
    """

    def __init__(self, handed: queue.Queue, stop: threading.Event):
        self.handed = handed
        self.stop = stop
        self.events: list = []

    def add(self, line: int, text: str) -> None:
        self.append((REPORT, line, text))

    def append(self, event: tuple) -> None:
        self.events.append(event)
        if len(self.events) >= CHUNK:
            self.hand(self.events)
            self.events = []

    def hand(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.handed.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped


@contextmanager
def read_ahead(produce: Callable[[Reports], Iterator[tuple]]) -> Iterator[Iterator[tuple]]:
    """Yield produce(reports)'s events, in order, computed ahead on a thread; reports arrive as REPORT events."""
    handed: queue.Queue = queue.Queue(maxsize=DEPTH)
    stop = threading.Event()

    def work() -> None:
        sender = _Sender(handed, stop)
        try:
            try:
                for event in produce(sender):
                    sender.append(event)
            except _Stopped:
                raise
            except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
                sender.hand(sender.events)
                sender.hand(_Failed(exc))
                return
            sender.hand(sender.events)
            sender.hand(_DONE)
        except _Stopped:
            return

    def events() -> Iterator[tuple]:
        while True:
            item = handed.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield from item

    reader = threading.Thread(target=work, name="import-read-ahead", daemon=True)
    reader.start()
    try:
        yield events()
    finally:
        stop.set()
        reader.join()
