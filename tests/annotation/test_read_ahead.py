"""The import's read-ahead thread: events in the file's order, reports where they were made, errors
raised where they happened, memory bounded by its queue, and a thread that ends when the caller stops."""

import threading
import time

import pytest

from annotation import read_ahead
from annotation.read_ahead import REPORT


def _produce(count, *, report_every=0, fail_at=None):
    def produce(reports):
        for i in range(count):
            if report_every and i % report_every == 0:
                reports.add(i, f"bad {i}")
            if i == fail_at:
                raise ValueError(f"broke at {i}")
            yield ("row", i, i * 2)
    return produce


def test_events_and_reports_arrive_in_the_order_they_were_made(monkeypatch):
    monkeypatch.setattr(read_ahead, "CHUNK", 7)
    with read_ahead.read_ahead(_produce(100, report_every=10)) as events:
        seen = list(events)
    expected = []
    for i in range(100):
        if i % 10 == 0:
            expected.append((REPORT, i, f"bad {i}"))
        expected.append(("row", i, i * 2))
    assert seen == expected


def test_an_error_while_reading_is_raised_after_the_events_before_it():
    got = []
    with pytest.raises(ValueError, match="broke at 600"):
        with read_ahead.read_ahead(_produce(1000, fail_at=600)) as events:
            for event in events:
                got.append(event)
    assert [line for _, line, _ in got] == list(range(600))


def test_a_run_of_reports_is_handed_over_as_it_is_read_not_gathered(monkeypatch):
    """A file of nothing but bad lines: the reading thread stays at most DEPTH chunks ahead."""
    monkeypatch.setattr(read_ahead, "CHUNK", 10)
    monkeypatch.setattr(read_ahead, "DEPTH", 2)
    made = []

    def produce(reports):
        for i in range(10_000):
            made.append(i)
            reports.add(i, "malformed")
        return
        yield

    with read_ahead.read_ahead(produce) as events:
        first = next(events)
        time.sleep(0.3)  # time enough for the reader to run far ahead, if it could
        assert first == (REPORT, 0, "malformed")
        assert len(made) <= 10 * (2 + 2), len(made)  # queued chunks, the one taken, the one being filled
        assert sum(1 for _ in events) == 9_999


def test_the_reading_thread_ends_when_the_caller_stops_early(monkeypatch):
    monkeypatch.setattr(read_ahead, "CHUNK", 4)
    monkeypatch.setattr(read_ahead, "DEPTH", 1)
    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(RuntimeError):
        with read_ahead.read_ahead(_produce(1_000_000)) as events:
            next(events)
            raise RuntimeError("the database refused the batch")
    left = [t for t in threading.enumerate() if t.ident not in before and t.name == "import-read-ahead"]
    assert left == []
