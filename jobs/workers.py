"""Who holds a job: the worker's name, whether that worker still lives, and its orphaned pipeline."""

from __future__ import annotations

import os
import signal
import socket
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from annotation.worker_processes import pid_alive, worker_alive, worker_name

__all__ = ["HEARTBEAT_STALE", "job_worker_alive", "pid_alive", "pipeline_orphan_kill", "worker_name"]

HEARTBEAT_STALE = timedelta(seconds=60)  # a heartbeat this old means its worker is gone (jobs/recovery.py)
PIPELINE_MARK = b"training.pipelines"  # in the command line of every pipeline process


def job_worker_alive(*, run, now: datetime | None = None) -> bool:
    """Is the worker process named in the job's `worker` still there? On this host: its pid; elsewhere: its heartbeat.

    (`run` is any job row; the name is kept for the callers that pass a training run.)
    """
    return worker_alive(worker=run.worker, heartbeat_at=run.heartbeat_at, now=now or timezone.now(),
                        stale=HEARTBEAT_STALE)


def pipeline_orphan_kill(*, run) -> None:
    """Kill a pipeline process left behind by a lost worker on this host, so two never share a job's files.

    A Ray job (a run's `ray_job_id`) outlives its worker on any host: it is asked to stop here, and
    the worker that resumes the run waits until it has stopped before it submits another
    (jobs/executors_ray.py).
    """
    ray_job_id = getattr(run, "ray_job_id", "")
    if ray_job_id and settings.RAY_ADDRESS:
        from .executors_ray import ray_job_stop_request

        ray_job_stop_request(address=settings.RAY_ADDRESS, job_id=ray_job_id)
    host, _, _ = run.worker.rpartition(":")
    pid = run.pipeline_pid
    if host != socket.gethostname() or not pid_alive(pid):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return
    if PIPELINE_MARK not in cmdline:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
