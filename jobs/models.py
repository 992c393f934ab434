"""The abstract job: the columns every job table has, with the same names (TrainingRun, GenerationJob).

Abstract, so each job keeps its own table; the names and types are those the tables had before
this base existed, so adopting it changed no column.
"""

from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLING = "cancelling", "Cancelling"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING)
FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """A unit of gpu work that a worker claims, streams progress into, and ends (jobs/lifecycle.py)."""

    Status = JobStatus
    ACTIVE = ACTIVE

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the Celery worker process.")
    pipeline_pid = models.PositiveIntegerField(null=True, blank=True, help_text="The pipeline subprocess's pid.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    recoveries = models.PositiveSmallIntegerField(
        default=0, help_text="How often a lost worker's job was queued again (jobs/recovery.py)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0
