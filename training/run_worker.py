"""The worker's side of a training run: claim it, freeze its snapshot, store its progress, end it.

Every status change goes through jobs/lifecycle.py (conditional UPDATEs, shared with generation
jobs); this module adds what a training run has besides: its dataset snapshot, frozen here before
the pipeline starts, its metric points, and the model it registers when it succeeds.
training/runner.py drives the pipeline and calls these.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from annotation.errors import InvalidInput
from annotation.export_filters import ExportFilters
from jobs import lifecycle, recovery

from . import model_detail, services, webhook_events
from .models import MetricPoint, ModelVersion, TrainingRun
from .snapshots import snapshot_expected_rows, snapshot_freeze

RELATED = ("base_model", "reward_model", "snapshot", "project")


def run_claim(*, run_id: int, worker: str) -> TrainingRun | None:
    """Take a queued run, or resume a running one whose worker is gone. None: nothing to do (idempotent)."""
    run, taken_over = lifecycle.job_claim(model=TrainingRun, pk=run_id, worker=worker, related=RELATED)
    if run is not None and taken_over:
        run_log_append(run=run, lines=[f"[platform] worker {worker} resumes the run after losing its worker"])
    return run


class FreezeStopped(Exception):
    """The run left `running` (cancelled, or taken over) while its snapshot was freezing."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def run_snapshot_freeze(*, run: TrainingRun) -> str | None:
    """The worker's first step: freeze the run's snapshot if it has none yet. Returns None to go on training.

    Otherwise the status the run ended in (failed: an empty snapshot, with the reason; cancelled)
    or the status that someone else gave it meanwhile. Every PROGRESS_ROWS rows the run's
    frozen_rows and heartbeat are written and its status read, so the page shows the freeze's
    progress and a cancel stops the freeze; between them a thread keeps the heartbeat fresh, so
    the recovery sweep never takes a freezing worker for lost.
    """
    if run.snapshot_id is not None:
        return None
    format = services.SNAPSHOT_FORMAT[run.kind]
    filters = ExportFilters.from_mapping(run.data_filters)
    expected = snapshot_expected_rows(project=run.project, format=format, filters=filters)
    now = timezone.now()
    run.frozen_rows, run.frozen_rows_expected = 0, expected
    TrainingRun.objects.filter(pk=run.pk).update(frozen_rows=0, frozen_rows_expected=expected, heartbeat_at=now)
    run_log_append(run=run, lines=[f"[platform] freezing the dataset ({format}"
                                   + (f", {expected} rows)" if expected is not None else ")")])

    def progress(rows: int) -> None:
        run.frozen_rows = rows
        status = run_progress_flush(run=run, step=None, total=None, points=[], log_lines=[], frozen_rows=rows)
        if status != TrainingRun.Status.RUNNING:
            raise FreezeStopped(status)

    try:
        with lifecycle.job_heartbeat_while(model=TrainingRun, pk=run.pk):
            snapshot = snapshot_freeze(
                project=run.project, format=format, created_by=run.created_by, allow_empty=False, filters=filters,
                on_progress=progress,
            )
    except InvalidInput as error:
        message = services.run_data_error(error).message
        run_finish(run=run, status=TrainingRun.Status.FAILED, error=f"Could not freeze the dataset: {message}")
        return TrainingRun.Status.FAILED
    except FreezeStopped as stopped:
        if stopped.status == TrainingRun.Status.CANCELLING:
            run_finish(run=run, status=TrainingRun.Status.CANCELLED, log_line="[platform] cancelled while freezing")
            return TrainingRun.Status.CANCELLED
        return stopped.status
    TrainingRun.objects.filter(pk=run.pk, snapshot__isnull=True).update(
        snapshot=snapshot, frozen_rows=snapshot.row_count, heartbeat_at=timezone.now(), updated_at=timezone.now(),
    )
    run.snapshot, run.frozen_rows = snapshot, snapshot.row_count
    run_log_append(run=run, lines=[
        f"[platform] froze the dataset: snapshot #{snapshot.pk}, {snapshot.row_count} rows, "
        f"sha256 {snapshot.sha256[:12]}"
    ])
    return None


def run_requeue(*, run: TrainingRun, reason: str) -> bool:
    """Put a running run back in the queue for a retry (the pipeline resumes from its last checkpoint)."""
    return lifecycle.job_requeue(model=TrainingRun, job=run, reason=reason)


def run_log_append(*, run: TrainingRun, lines: list[str]) -> None:
    lifecycle.job_log_append(model=TrainingRun, job=run, lines=lines)


def run_started(*, run: TrainingRun, pipeline_pid: int | None, ray_job_id: str = "") -> None:
    """The pipeline is up: its pid on this host, or its Ray job (kept after the run ends, for the record)."""
    fields = {"ray_job_id": ray_job_id} if ray_job_id else None
    lifecycle.job_started(model=TrainingRun, job=run, pipeline_pid=pipeline_pid, fields=fields)


def run_progress_flush(
    *, run: TrainingRun, step: int | None, total: int | None, points: list[tuple[int, str, float]],
    log_lines: list[str], resumed_at: int | None = None, frozen_rows: int | None = None,
) -> str:
    """Store a batch of progress: metric points, step/total, log tail, heartbeat. Returns the run's status now."""
    with transaction.atomic():
        if resumed_at is not None:
            # Steps past the checkpoint are trained again; their old points would be duplicates.
            MetricPoint.objects.filter(run=run, step__gt=resumed_at).delete()
        if points:
            MetricPoint.objects.bulk_create(
                [MetricPoint(run_id=run.pk, step=s, name=n[:100], value=v) for s, n, v in points]
            )
        fields = {"frozen_rows": frozen_rows} if frozen_rows is not None else {}
        return lifecycle.job_progress_flush(
            model=TrainingRun, job=run, step=step, total=total, log_lines=log_lines, fields=fields,
        )


def run_finish(*, run: TrainingRun, status: str, error: str = "", log_line: str = "") -> TrainingRun:
    """End a run in a final status (only from running or cancelling: a run never leaves a final status).

    A run that fails here emits run.failed (its id from the run and when it ended, so a repeated
    finish names the same event).
    """
    run = lifecycle.job_finish(model=TrainingRun, job=run, status=status, error=error, log_line=log_line)
    if status == TrainingRun.Status.FAILED and run.status == TrainingRun.Status.FAILED:
        webhook_events.run_finished_emit(run=run)
    return run


def run_succeed(*, run: TrainingRun, metrics: dict) -> ModelVersion:
    """Register the run's model dir as a ModelVersion and mark the run succeeded (idempotent)."""
    with transaction.atomic():
        model = ModelVersion.objects.filter(produced_by=run).first()
        if model is None:
            model = ModelVersion.objects.create(
                name=f"{run.project.slug}-{run.kind}-run{run.pk}"[:200],
                kind=services.OUTPUT_KIND[run.kind],
                path=f"{run.checkpoint_dir}/model",
                source=ModelVersion.Source.STORAGE,
                parent=run.base_model,
                produced_by=run,
                project=run.project,
                metrics=metrics,
            )
        if run.total_steps:
            TrainingRun.objects.filter(pk=run.pk).update(step=run.total_steps)
        run_finish(run=run, status=TrainingRun.Status.SUCCEEDED, log_line=f"[platform] registered model {model.name}")
        if run.status == TrainingRun.Status.SUCCEEDED:  # sent once this transaction commits
            webhook_events.run_finished_emit(run=run)
            webhook_events.model_registered_emit(model=model)
    model_detail.card_write(model)  # README.md with the model's metadata, beside its weights
    return model


def runs_recover_lost(*, lost_after: timedelta | None = None) -> int:
    """Queue again the runs whose worker is lost (jobs/recovery.py); they resume from their checkpoint."""
    return recovery.jobs_recover(
        model=TrainingRun, noun="run", enqueue=lambda pk: services.run_enqueue(run_id=pk),
        lost_after=lost_after or recovery.LOST_AFTER,
    )
