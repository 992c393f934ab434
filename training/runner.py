"""Run one training run's pipeline as a subprocess and stream its progress into the database.

The Celery worker never imports torch: it writes run.json, starts
`python -m training.pipelines.<kind> --config run.json` (forked by the worker's warm launcher when
it has one, see pipeline_process; `accelerate launch` for several GPUs) in its own process group,
and reads its stdout. JSON progress lines become step/total and
MetricPoint rows, flushed in batches every FLUSH_SECONDS; any other line goes to the bounded
log tail. Each flush is also the heartbeat and the cancellation check.
"""

from __future__ import annotations

import json
import os
import re
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


from . import capacity, services
from .models import TrainingRun
from .registry import model_location
from .pipeline_process import pipeline_start
from .snapshots import storage_path

FLUSH_SECONDS = 2.0
TERMINATE_GRACE_SECONDS = 10.0
MAX_LINE_CHARS = 2000
ERROR_LINES = 20


class Outcome:
    SKIPPED = "skipped"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STOPPED = "stopped"  # someone else ended the run (e.g. the orphan sweep) while it ran
    RETRY = "retry"


def run_dir(run: TrainingRun) -> Path:
    return storage_path(run.checkpoint_dir or f"runs/{run.pk}")


def run_config_write(*, run: TrainingRun) -> Path:
    """Write run.json: the user's config plus the paths the platform sets (data, models, output dir)."""
    cls = services.pipeline_config_class(kind=run.kind)
    names = {f for f in cls.__dataclass_fields__}
    folder = run_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in run.config.items() if k not in services.PLATFORM_OPTIONS}
    paths = {
        "model_path": model_location(run.base_model),
        "output_dir": str(folder),
        "train_file": str(storage_path(run.snapshot.path)),
        "prompts_file": str(storage_path(run.snapshot.path)),
    }
    if run.reward_model is not None:
        paths["reward_model_path"] = model_location(run.reward_model)
    config.update({k: v for k, v in paths.items() if k in names})
    path = folder / "run.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def pipeline_command(*, run: TrainingRun, config_path: Path) -> list[str]:
    """The pipeline's argv: one process, or `accelerate launch` across num_gpus GPUs (which must exist here)."""
    gpus = int(run.config.get("num_gpus", 1) or 1)
    module = ["-m", f"training.pipelines.{run.kind}", "--config", str(config_path)]
    if gpus > 1:
        visible = capacity.visible_gpu_count()
        if gpus > visible:
            # accelerate would start the processes anyway (on the CPU, or all on one device).
            raise ValueError(f"config.num_gpus is {gpus}, but this worker has {visible} GPU{'' if visible == 1 else 's'}")
        return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus), *module]
    return [sys.executable, *module]


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except OSError:
        try:
            proc.send_signal(sig)
        except OSError:
            pass


@dataclass
class _Batch:
    step: int | None = None
    total: int | None = None
    points: list[tuple[int, str, float]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    resumed_at: int | None = None


@dataclass
class _Stream:
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


def _log_append(line: str, batch: _Batch, state: _Stream) -> None:
    batch.lines.append(line)
    state.recent = (state.recent + [line])[-ERROR_LINES:]


def _pending_bar_flush(batch: _Batch, state: _Stream) -> None:
    if state.pending_bar is not None:
        _log_append(state.pending_bar[1], batch, state)
        state.pending_bar = None


def _log_line(line: str, batch: _Batch, state: _Stream) -> None:
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


def _handle_line(raw: str, batch: _Batch, state: _Stream) -> None:
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
        batch.lines.append(f"[platform] pipeline started at step {start}/{total}{note} on {event.get('device')}")
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


def _flush(run: TrainingRun, batch: _Batch) -> str:
    status = services.run_progress_flush(
        run=run, step=batch.step, total=batch.total, points=batch.points, log_lines=batch.lines,
        resumed_at=batch.resumed_at,
    )
    batch.points, batch.lines, batch.resumed_at = [], [], None
    return status


def _read_metrics_file(folder: Path) -> dict:
    try:
        data = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_execute(*, run_id: int, attempt: int = 1, max_attempts: int = 3) -> str:
    """Claim the run, freeze its dataset snapshot, run its pipeline to the end (or until cancelled), record the outcome."""
    run = services.run_claim(run_id=run_id, worker=services.worker_name())
    if run is None:
        return Outcome.SKIPPED
    ended = services.run_snapshot_freeze(run=run)
    if ended is not None:
        return {TrainingRun.Status.FAILED: Outcome.FAILED, TrainingRun.Status.CANCELLED: Outcome.CANCELLED}.get(
            ended, Outcome.STOPPED)
    try:
        config_path = run_config_write(run=run)
        command = pipeline_command(run=run, config_path=config_path)
    except Exception as exc:  # a missing snapshot file, an unwritable storage root, ...
        services.run_finish(run=run, status=TrainingRun.Status.FAILED, error=f"Could not prepare the run: {exc}")
        return Outcome.FAILED
    proc, how = pipeline_start(command, env=services.pipeline_env())
    services.run_log_append(run=run, lines=[f"[platform] attempt {attempt}, {how}: {' '.join(command)}"])
    services.run_started(run=run, pipeline_pid=proc.pid)
    try:
        return _follow(run=run, proc=proc, attempt=attempt, max_attempts=max_attempts)
    except BaseException as exc:  # a time limit, a lost database: never leave the pipeline behind
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
        services.run_finish(run=run, status=TrainingRun.Status.FAILED, error=f"The worker stopped the run: {exc!r}")
        raise


def follow_pipeline(proc: subprocess.Popen, *, flush: Callable[[_Batch], str], running: str) -> tuple[int, str | None, _Stream]:
    """Stream a pipeline's output until it exits, for runs and generation jobs alike.

    Every FLUSH_SECONDS, `flush(batch)` stores what arrived and returns the row's status. When that
    is no longer `running` (cancelled, or taken over), the pipeline gets SIGTERM, then SIGKILL after
    a grace period. Returns (exit code, the status that stopped it or None, the stream's state).
    """
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    batch, state = _Batch(), _Stream()
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
                _signal_group(proc, signal.SIGTERM)
                kill_at = now + TERMINATE_GRACE_SECONDS
        if kill_at is not None and now >= kill_at and proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            kill_at = None
    code = proc.wait()
    reader.join(timeout=5)
    return code, stop_reason, state


def untrained_error(run: TrainingRun) -> str:
    """Why a run that finished after 0 optimizer steps registers no model: its weights are the base's."""
    config = run.config or {}
    rows = run.snapshot.row_count if run.snapshot_id else "?"
    return (
        "The pipeline finished after 0 optimizer steps, so no model was registered: its weights would be "
        f"the base model's. max_steps={config.get('max_steps', -1)}, "
        f"num_train_epochs={config.get('num_train_epochs', 'default')}, training rows={rows}."
    )


def _follow(*, run: TrainingRun, proc: subprocess.Popen, attempt: int, max_attempts: int) -> str:
    code, stop_reason, state = follow_pipeline(
        proc, flush=lambda batch: _flush(run, batch), running=TrainingRun.Status.RUNNING
    )
    if stop_reason == TrainingRun.Status.CANCELLING:
        services.run_finish(run=run, status=TrainingRun.Status.CANCELLED, log_line="[platform] cancelled")
        return Outcome.CANCELLED
    if stop_reason is not None:
        return Outcome.STOPPED
    if code == 0:
        metrics = _read_metrics_file(run_dir(run)) or state.done_metrics or {}
        if state.trained_steps == 0:  # decided here, before run_succeed could register the untrained weights
            services.run_finish(run=run, status=TrainingRun.Status.FAILED, error=untrained_error(run))
            return Outcome.FAILED
        if not (run_dir(run) / "model").is_dir():
            services.run_finish(run=run, status=TrainingRun.Status.FAILED, error="The pipeline wrote no model directory.")
            return Outcome.FAILED
        services.run_succeed(run=run, metrics=metrics)
        return Outcome.SUCCEEDED
    if code < 0 and attempt < max_attempts:
        # Killed by a signal we did not send (OOM killer, a node drain): retry from the last checkpoint.
        reason = f"pipeline killed by signal {-code}; retrying from the last checkpoint ({attempt + 1}/{max_attempts})"
        if services.run_requeue(run=run, reason=reason):
            return Outcome.RETRY
        return Outcome.STOPPED
    why = state.error_message or (f"killed by signal {-code}" if code < 0 else f"exit status {code}")
    error = f"The pipeline failed: {why}\n" + "\n".join(state.recent)
    services.run_finish(run=run, status=TrainingRun.Status.FAILED, error=error.strip())
    return Outcome.FAILED
