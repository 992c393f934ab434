"""Where a job's pipeline runs. One small interface; a local process is the first executor.

An executor starts a pipeline's argv (`python -m training.pipelines.<kind> --config ...`, or
`accelerate launch ...`) and gives back a process handle that jobs/stream.py can follow: pid,
stdout (text lines), poll(), wait() and send_signal(). Stopping it is the executor's business
too. jobs/executors_ray.py runs the pipeline as a Ray job, with a handle that reads the job's log
and has no local pid (None); a Slurm step would implement the same two methods.

`pipeline_execute` is the one way every kind of job runs a pipeline: start it, tell the job's
owner (its pid and how it started), follow its output to the end, and never leave it behind if
the worker itself is stopped (a time limit, a lost database).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Protocol

from . import pipeline_process
from .stream import Batch, StreamState, follow_pipeline, signal_group


class ExecutorUnavailable(Exception):
    """The executor could not start the pipeline (its cluster is unreachable, or refused the job)."""


class PipelineHandle(Protocol):
    pid: int
    stdout: object

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...


class Executor(Protocol):
    def start(self, command: list[str], *, env: dict) -> tuple[PipelineHandle, str]:
        """Start the pipeline; return its handle and a note for the job's log (how it was started)."""

    def kill(self, process: PipelineHandle) -> None:
        """Stop it at once and reap it."""


class LocalExecutor:
    """A process on this worker's machine: forked by the worker's warm launcher when it has one, else cold."""

    def start(self, command: list[str], *, env: dict) -> tuple[PipelineHandle, str]:
        return pipeline_process.pipeline_start(command, env=env)

    def kill(self, process: PipelineHandle) -> None:
        signal_group(process, signal.SIGKILL)
        process.wait()


def executor_default() -> Executor:
    return LocalExecutor()


def pipeline_execute(
    *, command: list[str], env: dict, flush: Callable[[Batch], str], running: str,
    on_start: Callable[[PipelineHandle, str], None] | None = None,
    on_abort: Callable[[BaseException], None] | None = None, executor: Executor | None = None,
) -> tuple[int, str | None, StreamState]:
    """Run `command` to its end through `executor`; returns follow_pipeline's (exit code, stop status, state).

    `on_start(process, note)` records the pid and how it started; `on_abort(exc)` ends the job when
    the worker itself is interrupted, after the pipeline has been killed, and the exception goes on.
    """
    executor = executor or executor_default()
    process, note = executor.start(command, env=env)
    try:
        if on_start is not None:
            on_start(process, note)
        return follow_pipeline(process, flush=flush, running=running)
    except BaseException as exc:
        executor.kill(process)
        if on_abort is not None:
            on_abort(exc)
        raise
