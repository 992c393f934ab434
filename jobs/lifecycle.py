"""Every status change of a job, for training runs and generation jobs alike.

Each change is a conditional UPDATE on the job's row, so a task delivered twice, a cancel racing
a finish, or the recovery sweep racing a live worker can never move a job backwards: a job leaves
`queued` only when one worker claims it, and never leaves a final status. The callers (training's
services, loop's generation) add what their kind of job stores besides (metric points, tasks).

    queued --claim--> running --finish--> succeeded | failed | cancelled
       ^                 |  \\--cancel--> cancelling --finish--> cancelled
       +----requeue------+   (a lost worker: jobs/recovery.py requeues or ends it)
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.db.models import F, Model, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.errors import Conflict
from annotation.heartbeats import beating

from .models import JobStatus as Status
from .workers import job_worker_alive, pipeline_orphan_kill

LOG_TAIL_LINES = 200


def append_lines(tail: str, lines: list[str]) -> str:
    """The log tail with `lines` added, bounded to its last LOG_TAIL_LINES lines."""
    kept = (tail.splitlines() if tail else []) + [line.rstrip("\n") for line in lines]
    return "\n".join(kept[-LOG_TAIL_LINES:])


def job_claim(
    *, model: type[Model], pk: int, worker: str, related: tuple[str, ...] = (), restart: dict | None = None,
    on_final: Callable[[Model], None] | None = None,
) -> tuple[Model | None, bool]:
    """Take a queued job, or take over a running one whose worker is gone. Returns (job or None, taken over).

    None: nothing to do (idempotent: a task delivered twice while its first delivery lives claims
    nothing). A lost job that was being cancelled ends cancelled here (`on_final` is told). `restart`
    holds the fields to reset when a new worker takes a job over (a generation job's step).
    """
    now = timezone.now()
    claimed = model.objects.filter(pk=pk, status=Status.QUEUED).update(
        status=Status.RUNNING, worker=worker, heartbeat_at=now, updated_at=now, error="",
        started_at=Coalesce(F("started_at"), Value(now)),
    )
    if claimed:
        return model.objects.select_related(*related).get(pk=pk), False
    job = model.objects.filter(pk=pk).first()
    if job is None or job.status not in (Status.RUNNING, Status.CANCELLING):
        return None, False
    if job.worker == worker or job_worker_alive(run=job, now=now):
        return None, False
    pipeline_orphan_kill(run=job)
    if job.status == Status.CANCELLING:
        job = job_finish(model=model, job=job, status=Status.CANCELLED, log_line="[platform] cancelled: its worker was lost")
        if on_final is not None:
            on_final(job)
        return None, False
    taken = model.objects.filter(pk=pk, status=Status.RUNNING, worker=job.worker).update(
        worker=worker, heartbeat_at=now, pipeline_pid=None, updated_at=now, **(restart or {})
    )
    if not taken:
        return None, False
    return model.objects.select_related(*related).get(pk=pk), True


def job_log_append(*, model: type[Model], job: Model, lines: list[str]) -> None:
    job.log_tail = append_lines(job.log_tail, lines)
    model.objects.filter(pk=job.pk).update(log_tail=job.log_tail, updated_at=timezone.now())


def job_started(*, model: type[Model], job: Model, pipeline_pid: int | None, fields: dict | None = None) -> None:
    """The job's pipeline is up: its pid (to kill an orphan; None for a Ray job), any `fields`, and a heartbeat."""
    job.pipeline_pid = pipeline_pid
    for name, value in (fields or {}).items():
        setattr(job, name, value)
    model.objects.filter(pk=job.pk).update(pipeline_pid=pipeline_pid, heartbeat_at=timezone.now(), **(fields or {}))


def job_progress_flush(
    *, model: type[Model], job: Model, step: int | None = None, total: int | None = None,
    log_lines: list[str] = (), fields: dict | None = None,
) -> str:
    """Store a batch of progress (step/total, log tail, any `fields`) with the heartbeat. Returns the status now.

    The status read back is how a worker learns that its job was cancelled or taken over.
    """
    now = timezone.now()
    changed: dict = {"heartbeat_at": now, "updated_at": now, **(fields or {})}
    if total is not None:
        job.total_steps = max(int(total), 0)
        changed["total_steps"] = job.total_steps
    if step is not None:
        job.step = max(int(step), 0)
        if job.total_steps:
            job.step = min(job.step, job.total_steps)
        changed["step"] = job.step
    if log_lines:
        job.log_tail = append_lines(job.log_tail, list(log_lines))
        changed["log_tail"] = job.log_tail
    model.objects.filter(pk=job.pk).update(**changed)
    status = model.objects.filter(pk=job.pk).values_list("status", flat=True).first()
    return status or Status.FAILED


def job_heartbeat_while(*, model: type[Model], pk: int, every: float = 10.0):
    """Keep the job's heartbeat fresh from a thread while the worker does one long step that reports nothing.

    A step such as freezing a snapshot may spend minutes in one query before its first row (a
    consensus fit, a large sort); without this, a sweep on another host would take the silent
    worker for lost (jobs/recovery.py judges other hosts by the heartbeat alone).
    """
    return beating(lambda: model.objects.filter(pk=pk).update(heartbeat_at=timezone.now()), every=every,
                   name=f"heartbeat-{pk}")


def job_finish(*, model: type[Model], job: Model, status: str, error: str = "", log_line: str = "") -> Model:
    """End a job in a final status (only from running or cancelling: a job never leaves a final status)."""
    now = timezone.now()
    fields = {"status": status, "finished_at": now, "heartbeat_at": now, "updated_at": now, "pipeline_pid": None}
    if error:
        fields["error"] = error
    if log_line:
        fields["log_tail"] = append_lines(job.log_tail, [log_line])
    model.objects.filter(pk=job.pk, status__in=[Status.RUNNING, Status.CANCELLING]).update(**fields)
    job.refresh_from_db()
    return job


def job_requeue(*, model: type[Model], job: Model, reason: str) -> bool:
    """Put a running job back in the queue (a retry after its pipeline was killed). False: it is not running."""
    lines = append_lines(job.log_tail, [f"[platform] {reason}"])
    return bool(
        model.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.QUEUED, worker="", pipeline_pid=None, log_tail=lines, updated_at=timezone.now()
        )
    )


def job_cancel(*, model: type[Model], pk: int, noun: str) -> Model:
    """Cancel a job: a queued one ends at once; a running one becomes cancelling and its worker stops it.

    Cancelling twice is a no-op; a finished job is a Conflict (409). Locks the row in a transaction.
    """
    with transaction.atomic():
        job = model.objects.select_for_update().get(pk=pk)
        if job.status == Status.QUEUED:
            job.status, job.finished_at = Status.CANCELLED, timezone.now()
        elif job.status == Status.RUNNING:
            job.status = Status.CANCELLING
        elif job.status in (Status.CANCELLING, Status.CANCELLED):
            return job
        else:
            raise Conflict(f"The {noun} has already {job.status}.", field="status")
        job.save(update_fields=["status", "finished_at", "updated_at"])
    return job
