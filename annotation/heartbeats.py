"""A heartbeat thread: stamp a row every few seconds while the worker is busy in one long blocking call.

A worker that spends minutes inside one call (an upload, a query before its first row) cannot
stamp its own heartbeat, and a sweep on another host would take it for lost. `beating` runs the
stamp from a daemon thread until the block ends; the thread closes its own database connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def beating(stamp: Callable[[], None], *, every: float, name: str) -> Iterator[None]:
    """Call stamp() every `every` seconds from a thread named `name` until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                stamp()
        finally:
            connection.close()  # the thread's own connection

    thread = threading.Thread(target=beat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 10)
