"""Lost workers: their jobs go back to the queue, and another worker resumes them within about a minute.

Runs and generation jobs are acks_late, but the broker hands an unacknowledged message back only
after its visibility timeout, which has to outlast the longest run (days). So a loss is told by
the job's own heartbeat, which its worker writes with every flush (about every two seconds): a
running job whose heartbeat is older than LOST_AFTER, and whose worker process is not alive, is
queued again by the sweep that beat starts every SWEEP_SECONDS. A training run then resumes from
its newest intact checkpoint; a generation job samples again from the first prompt. A job lost
MAX_RECOVERIES times fails with its reason; a lost job that was being cancelled ends cancelled.

The lost worker's own message, if the broker ever hands it back, finds the job taken or finished
and does nothing (the claims are conditional updates).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .lifecycle import append_lines
from .models import JobStatus as Status
from .workers import job_worker_alive, pipeline_orphan_kill

LOST_AFTER = timedelta(seconds=60)  # twenty missed flushes
SWEEP_SECONDS = 20.0
MAX_RECOVERIES = 3


def jobs_recover(
    *, model, noun: str, enqueue: Callable[[int], None], restart: dict | None = None,
    on_final: Callable | None = None, lost_after: timedelta = LOST_AFTER, now: datetime | None = None,
) -> int:
    """Queue again (or end) every running job of `model` whose worker is lost. Returns how many changed.

    `restart` holds fields to reset for a fresh attempt (a generation job's step); `on_final` is told
    of a job that ended here (cancelled or failed), with its new status.
    """
    now = now or timezone.now()
    cutoff = now - lost_after
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    changed = 0
    for job in model.objects.filter(stale, status__in=[Status.RUNNING, Status.CANCELLING]):
        if job_worker_alive(run=job, now=now):
            continue  # a worker on this host whose process lives: slow, not lost
        pipeline_orphan_kill(run=job)  # a pipeline that outlived its worker on this host must not share the job's files
        since = (job.heartbeat_at or job.started_at).isoformat()
        fields = {"worker": "", "pipeline_pid": None, "updated_at": now}
        if job.status == Status.CANCELLING:
            fields.update(status=Status.CANCELLED, finished_at=now)
            line = f"[platform] cancelled: its worker {job.worker} was lost"
        elif job.recoveries >= MAX_RECOVERIES:
            fields.update(status=Status.FAILED, finished_at=now,
                          error=f"worker lost {job.recoveries + 1} times; the last, {job.worker}, "
                                f"sent no heartbeat since {since}")
            line = f"[platform] worker {job.worker} lost again: giving up after {MAX_RECOVERIES} recoveries"
        else:
            fields.update(status=Status.QUEUED, recoveries=F("recoveries") + 1, **(restart or {}))
            line = (f"[platform] worker {job.worker} lost (no heartbeat since {since}); queued again for "
                    f"another worker ({job.recoveries + 1}/{MAX_RECOVERIES})")
        fields["log_tail"] = append_lines(job.log_tail, [line])
        with transaction.atomic():
            done = model.objects.filter(pk=job.pk, status=job.status, worker=job.worker).filter(stale).update(**fields)
            if done and fields["status"] == Status.QUEUED:
                transaction.on_commit(lambda pk=job.pk: enqueue(pk))
            elif done and on_final is not None:
                job.status = fields["status"]
                on_final(job)
        changed += done
    return changed
