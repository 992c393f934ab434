"""Follow a pipeline's output: JSON-lines events into batches that the job's owner flushes to the database.

A pipeline prints JSON lines ({"event": "start" | "progress" | "done" | "error", ...}) and any
other text. follow_pipeline reads them until the process exits, keeps step/total, metric points and
log lines in a batch, and every FLUSH_SECONDS hands the batch to the caller's `flush`, which stores
it and returns the job's status: when that is no longer `running` (cancelled, or taken over) the
pipeline gets SIGTERM, then SIGKILL after a grace period. Training runs, generation jobs and
reward-model scoring all follow their pipelines through here.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

FLUSH_SECONDS = 2.0
TERMINATE_GRACE_SECONDS = 10.0
MAX_LINE_CHARS = 2000
ERROR_LINES = 20


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the pipeline's process group, and the groups of all its descendants.

    `accelerate launch` starts each rank in a session of its own (torch's elastic launcher), so
    the launcher's group alone would leave the ranks running after a SIGKILL. The descendants are
    listed before anything is signalled: once the launcher is gone they are no longer its children.
    A handle with no local process (a Ray job) signals itself.
    """
    if proc.pid is None:
        proc.send_signal(sig)
        return
    groups = _descendant_groups(proc.pid)
    try:
        os.killpg(proc.pid, sig)
    except OSError:
        try:
            proc.send_signal(sig)
        except OSError:
            pass
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, sig)


def _descendant_groups(pid: int) -> set[int]:
    """The process groups of pid's descendants, other than pid's own and this process's."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return set()
    groups = set()
    for child in children:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(child.pid))
    return groups - {pid, os.getpgrp()}


@dataclass
class Batch:
    step: int | None = None
    total: int | None = None
    points: list[tuple[int, str, float]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    resumed_at: int | None = None


@dataclass
class StreamState:
    done_metrics: dict | None = None
    done_step: int | None = None  # the optimizer steps the done event reports the model has had
    max_step: int = 0  # the highest step any event reported, for pipelines whose done event has none
    error_message: str = ""
    recent: list[str] = field(default_factory=list)
    pending_bar: tuple[str, str] | None = None  # (description, last redraw) of a progress bar being drawn

    @property
    def trained_steps(self) -> int:
        return self.done_step if self.done_step is not None else self.max_step


def _read_lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


# Terminal control sequences (colours, cursor moves) that libraries print for a console.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-B0-2]|\x1b[=>]")
# A progress bar's redraw (tqdm: "Loading weights:  40%|####      | 4/10 [...]"): its description.
_BAR = re.compile(r"^(?P<desc>[^|]{0,200}?)\s*\d{1,3}%\|")


def _log_append(line: str, batch: Batch, state: StreamState) -> None:
    batch.lines.append(line)
    state.recent = (state.recent + [line])[-ERROR_LINES:]


def _pending_bar_flush(batch: Batch, state: StreamState) -> None:
    if state.pending_bar is not None:
        _log_append(state.pending_bar[1], batch, state)
        state.pending_bar = None


def _log_line(line: str, batch: Batch, state: StreamState) -> None:
    """A line for the log tail: colours stripped, and a progress bar's redraws kept as its last state only.

    The pipeline's stdout is read with universal newlines, so each "\r" redraw of a progress bar
    arrives as a line of its own; the log keeps the bar once, as it ended (or as it stood when
    something else was printed).
    """
    line = _ANSI.sub("", line).rstrip()
    if not line.strip():
        return
    bar = _BAR.match(line)
    if bar is None:
        _pending_bar_flush(batch, state)
        _log_append(line, batch, state)
        return
    if state.pending_bar is not None and state.pending_bar[0] != bar["desc"]:
        _pending_bar_flush(batch, state)
    state.pending_bar = (bar["desc"], line)
    if "100%|" in line:
        _pending_bar_flush(batch, state)


def _handle_line(raw: str, batch: Batch, state: StreamState) -> None:
    line = raw.rstrip("\r\n")[:MAX_LINE_CHARS]
    event = None
    if line.startswith("{"):
        try:
            event = json.loads(line)
        except ValueError:
            event = None
    if not isinstance(event, dict) or "event" not in event:
        _log_line(line, batch, state)
        return
    _pending_bar_flush(batch, state)
    kind = event.get("event")
    step, total = event.get("step"), event.get("total")
    if isinstance(total, int) and total > 0:
        batch.total = total
    if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
        batch.step = step
        state.max_step = max(state.max_step, step)
    if kind == "start":
        start = step if isinstance(step, int) else 0
        resumed = event.get("resumed_from")
        note = f" (resumed from {resumed})" if resumed else ""
        ranks = event.get("world_size")
        where = f"{event.get('device')}, world size {ranks}" if isinstance(ranks, int) and ranks > 1 else event.get("device")
        batch.lines.append(f"[platform] pipeline started at step {start}/{total}{note} on {where}")
        if resumed:
            batch.resumed_at = start
    elif kind == "progress":
        metrics = event.get("metrics") or {}
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                batch.points.append((int(step or 0), str(name), float(value)))
    elif kind == "done":
        state.done_metrics = event.get("metrics") or {}
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            state.done_step = step
        batch.lines.append("[platform] pipeline done")
    elif kind == "error":
        state.error_message = str(event.get("message", ""))
        batch.lines.append(f"[pipeline error] {state.error_message}")
        state.recent = (state.recent + [f"error: {state.error_message}"])[-ERROR_LINES:]


def follow_pipeline(
    proc: subprocess.Popen, *, flush: Callable[[Batch], str], running: str
) -> tuple[int, str | None, StreamState]:
    """Stream a pipeline's output until it exits, for every kind of job.

    Every FLUSH_SECONDS, `flush(batch)` stores what arrived and returns the row's status. When that
    is no longer `running` (cancelled, or taken over), the pipeline gets SIGTERM, then SIGKILL after
    a grace period. Returns (exit code, the status that stopped it or None, the stream's state).
    """
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    batch, state = Batch(), StreamState()
    last_flush = time.monotonic()
    stop_reason: str | None = None  # the status that made us stop the pipeline
    kill_at: float | None = None
    eof = False
    while not eof:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            line = ""
        if line is None:
            eof = True
            _pending_bar_flush(batch, state)
        elif line:
            _handle_line(line, batch, state)
        now = time.monotonic()
        if eof or now - last_flush >= FLUSH_SECONDS:
            status = flush(batch)
            last_flush = now
            if status != running and stop_reason is None:
                stop_reason = status
                signal_group(proc, signal.SIGTERM)
                kill_at = now + TERMINATE_GRACE_SECONDS
        if kill_at is not None and now >= kill_at and proc.poll() is None:
            signal_group(proc, signal.SIGKILL)
            kill_at = None
    code = proc.wait()
    reader.join(timeout=5)
    return code, stop_reason, state


def failure_reason(code: int, state: StreamState) -> str:
    """Why a pipeline failed, in one line: its own error event, else how it exited."""
    return state.error_message or (f"killed by signal {-code}" if code < 0 else f"exit status {code}")
