"""Execute one training run: claim it, freeze its snapshot, run its pipeline, record the outcome.

The Celery worker never imports torch: it writes run.json and has the job executor start
`python -m training.pipelines.<kind> --config run.json` (jobs/executors.py: forked by the worker's
warm launcher when it has one; `accelerate launch` for several GPUs or CPU processes,
training/launch.py; a Ray job on the `ray` executor, training/placement.py), then follows its
stdout (jobs/stream.py). JSON progress lines become step/total and MetricPoint rows, flushed in
batches every couple of seconds; any other line goes to the bounded log tail. Each flush is
also the heartbeat and the cancellation check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jobs.executors import ExecutorUnavailable, pipeline_execute
from jobs.executors_ray import RayExecutor
from jobs.outcome import Outcome
from jobs.stream import Batch, failure_reason
from jobs.workers import worker_name

from . import capacity, launch, placement, run_worker, services
from .models import TrainingRun
from .registry import model_location
from .snapshots import storage_path


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
    """The pipeline's argv: one process, or `accelerate launch` on num_gpus GPUs or cpu_processes CPU processes.

    The GPUs must exist on this worker, and CPU processes are at most its cores: accelerate would
    start the processes anyway (on the CPU, all on one device, or oversubscribed).
    """
    processes, cpu = launch.run_processes(run.config)
    module = ["-m", f"training.pipelines.{run.kind}", "--config", str(config_path)]
    if processes == 1:
        return [sys.executable, *module]
    if cpu:
        cores = launch.cpu_count()
        if processes > cores:
            raise ValueError(f"config.cpu_processes is {processes}, but this worker has {cores} CPU core"
                             f"{'' if cores == 1 else 's'}")
    else:
        visible = capacity.visible_gpu_count()
        if processes > visible:
            raise ValueError(f"config.num_gpus is {processes}, but this worker has {visible} GPU{'' if visible == 1 else 's'}")
    return launch.accelerate_command(module=module, processes=processes, cpu=cpu,
                                     strategy=run.config.get("distributed", "ddp"), bf16=run.config.get("bf16"))


def pipeline_run_env(*, run: TrainingRun) -> dict:
    """The pipeline's environment (services.pipeline_env); a CPU launch hides the GPUs from its ranks."""
    _, cpu = launch.run_processes(run.config)
    return launch.launch_env(services.pipeline_env(), cpu=cpu)


def _read_metrics_file(folder: Path) -> dict:
    try:
        data = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_execute(*, run_id: int, attempt: int = 1, max_attempts: int = 3) -> str:
    """Claim the run, freeze its dataset snapshot, run its pipeline to the end (or until cancelled), record the outcome."""
    run = run_worker.run_claim(run_id=run_id, worker=worker_name())
    if run is None:
        return Outcome.SKIPPED
    ended = run_worker.run_snapshot_freeze(run=run)
    if ended is not None:
        return {TrainingRun.Status.FAILED: Outcome.FAILED, TrainingRun.Status.CANCELLED: Outcome.CANCELLED}.get(
            ended, Outcome.STOPPED)
    try:
        config_path = run_config_write(run=run)
        executor = placement.run_executor(run=run)
        if isinstance(executor, RayExecutor):
            command = placement.ray_command(run=run, config_path=config_path)
        else:
            command = pipeline_command(run=run, config_path=config_path)
    except Exception as exc:  # a missing snapshot file, an unwritable storage root, ...
        run_worker.run_finish(run=run, status=TrainingRun.Status.FAILED, error=f"Could not prepare the run: {exc}")
        return Outcome.FAILED

    def started(process, how: str) -> None:
        run_worker.run_log_append(run=run, lines=[f"[platform] attempt {attempt}, {how}: {' '.join(command)}"])
        run_worker.run_started(run=run, pipeline_pid=process.pid, ray_job_id=getattr(process, "ray_job_id", ""))

    def aborted(exc: BaseException) -> None:  # a time limit, a lost database: the pipeline is killed already
        run_worker.run_finish(run=run, status=TrainingRun.Status.FAILED, error=f"The worker stopped the run: {exc!r}")

    try:
        code, stop_reason, state = pipeline_execute(
            command=command, env=pipeline_run_env(run=run), flush=lambda batch: _flush(run, batch),
            running=TrainingRun.Status.RUNNING, on_start=started, on_abort=aborted, executor=executor,
        )
    except ExecutorUnavailable as exc:  # nothing started: the run fails with the reason, and can be resumed
        run_worker.run_finish(run=run, status=TrainingRun.Status.FAILED, error=f"Could not start the pipeline: {exc}")
        return Outcome.FAILED
    return _outcome(run=run, code=code, stop_reason=stop_reason, state=state, attempt=attempt,
                    max_attempts=max_attempts)


def _flush(run: TrainingRun, batch: Batch) -> str:
    status = run_worker.run_progress_flush(
        run=run, step=batch.step, total=batch.total, points=batch.points, log_lines=batch.lines,
        resumed_at=batch.resumed_at,
    )
    batch.points, batch.lines, batch.resumed_at = [], [], None
    return status


def untrained_error(run: TrainingRun) -> str:
    """Why a run that finished after 0 optimizer steps registers no model: its weights are the base's."""
    config = run.config or {}
    rows = run.snapshot.row_count if run.snapshot_id else "?"
    return (
        "The pipeline finished after 0 optimizer steps, so no model was registered: its weights would be "
        f"the base model's. max_steps={config.get('max_steps', -1)}, "
        f"num_train_epochs={config.get('num_train_epochs', 'default')}, training rows={rows}."
    )


def _outcome(*, run: TrainingRun, code: int, stop_reason: str | None, state, attempt: int, max_attempts: int) -> str:
    if stop_reason == TrainingRun.Status.CANCELLING:
        run_worker.run_finish(run=run, status=TrainingRun.Status.CANCELLED, log_line="[platform] cancelled")
        return Outcome.CANCELLED
    if stop_reason is not None:
        return Outcome.STOPPED
    if code == 0:
        metrics = _read_metrics_file(run_dir(run)) or state.done_metrics or {}
        if state.trained_steps == 0:  # decided here, before run_succeed could register the untrained weights
            run_worker.run_finish(run=run, status=TrainingRun.Status.FAILED, error=untrained_error(run))
            return Outcome.FAILED
        if not (run_dir(run) / "model").is_dir():
            run_worker.run_finish(run=run, status=TrainingRun.Status.FAILED,
                                  error="The pipeline wrote no model directory.")
            return Outcome.FAILED
        run_worker.run_succeed(run=run, metrics=metrics)
        return Outcome.SUCCEEDED
    if code < 0 and attempt < max_attempts:
        # Killed by a signal we did not send (OOM killer, a node drain): retry from the last checkpoint.
        reason = f"pipeline killed by signal {-code}; retrying from the last checkpoint ({attempt + 1}/{max_attempts})"
        if run_worker.run_requeue(run=run, reason=reason):
            return Outcome.RETRY
        return Outcome.STOPPED
    error = f"The pipeline failed: {failure_reason(code, state)}\n" + "\n".join(state.recent)
    run_worker.run_finish(run=run, status=TrainingRun.Status.FAILED, error=error.strip())
    return Outcome.FAILED
