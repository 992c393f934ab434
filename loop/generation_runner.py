"""Run one generation job: the sampler runs as a subprocess, its progress streams into the job.

The worker never imports torch. For each model of the job (one, or two for an A/B evaluation) it
writes gen-<n>.json and has the job executor (jobs/executors.py) run
`python -m training.pipelines.generate --config gen-<n>.json`, following its JSON-lines progress
and flushing it every couple of seconds (the flush is also the heartbeat and the cancellation check).
Then it reads the output JSONL and hands it to generation.generation_complete, which makes the
comparison tasks and marks the job succeeded in one transaction.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from annotation.models import Project, Prompt
from jobs.executors import pipeline_execute
from jobs.outcome import Outcome
from jobs.stream import Batch, failure_reason
from jobs.workers import worker_name
from training import services
from training.models import GenerationJob
from training.registry import model_location
from training.snapshots import storage_path

from . import generation
from .active_sampling import active_sampling_after_new_tasks


def job_folder(job: GenerationJob) -> Path:
    return storage_path(job.job_dir)


def prompts_write(*, job: GenerationJob) -> Path:
    """The job's prompts as the sampler reads them: {"id": prompt id, "prompt": [messages]} per line."""
    folder = job_folder(job)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prompts.jsonl"
    messages = dict(Prompt.objects.filter(pk__in=job.prompt_ids).values_list("pk", "messages"))
    with open(path, "w", encoding="utf-8") as f:
        for pk in job.prompt_ids:
            if pk in messages:  # a prompt deleted since the job was created is left out
                f.write(json.dumps({"id": pk, "prompt": messages[pk]}) + "\n")
    return path


def pass_configs_write(*, job: GenerationJob, prompts_path: Path) -> list[tuple[Path, Path]]:
    """One (config, output) pair per model: the sampler's config is generate.py's dataclass fields."""
    folder = job_folder(job)
    models = [job.model_version] + ([job.model_version_b] if job.model_version_b_id else [])
    passes = []
    for index, model in enumerate(models):
        output = folder / f"out-{index}.jsonl"
        config = {
            "model_path": model_location(model),
            "prompts_file": str(prompts_path),
            "output_file": str(output),
            "k": job.k,
            "temperature": job.temperature,
            "top_p": job.top_p,
            "max_new_tokens": job.max_new_tokens,
            "seed": job.seed + index,
        }
        path = folder / f"gen-{index}.json"
        path.write_text(json.dumps(config, indent=2))
        output.unlink(missing_ok=True)
        passes.append((path, output))
    return passes


def outputs_read(path: Path) -> dict[int, list]:
    """{prompt id: [texts]} from the sampler's output JSONL."""
    found: dict[int, list] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if isinstance(row.get("id"), int) and isinstance(row.get("responses"), list):
                found[row["id"]] = row["responses"]
    return found


def _fail(job: GenerationJob, error: str) -> None:
    generation.generation_finish(job=job, status=GenerationJob.Status.FAILED, error=error)


def generation_execute(*, job_id: int) -> str:
    """Claim the job, sample from each of its models, and make the comparison tasks."""
    job = generation.generation_claim(job_id=job_id, worker=worker_name())
    if job is None:
        return Outcome.SKIPPED
    try:
        passes = pass_configs_write(job=job, prompts_path=prompts_write(job=job))
    except Exception as exc:  # an unwritable storage root, ...
        _fail(job, f"Could not prepare the job: {exc}")
        return Outcome.FAILED
    per_pass = len(job.prompt_ids)
    outputs = []
    for index, (config_path, output_path) in enumerate(passes):
        command = [sys.executable, "-m", "training.pipelines.generate", "--config", str(config_path)]
        outcome = _run_pass(job=job, command=command, offset=index * per_pass)
        if outcome != Outcome.SUCCEEDED:
            return outcome
        try:
            outputs.append(outputs_read(output_path))
        except (OSError, ValueError) as exc:
            error = f"Could not read the sampler's output {output_path.name}: {exc}"
            _fail(job, error)
            return Outcome.FAILED
    try:
        job = generation.generation_complete(job=job, outputs=outputs)
    except Exception as exc:
        _fail(job, f"Could not create the tasks: {exc!r}")
        raise
    if job.status != GenerationJob.Status.SUCCEEDED:
        return Outcome.STOPPED
    _prioritise(job)
    return Outcome.SUCCEEDED


def _prioritise(job: GenerationJob) -> None:
    """A new round's tasks are scored by the project's reward model, if it has one (active sampling).

    An evaluation's tasks all need labels anyway, so their order is left alone. A failure here
    never fails the job: its tasks exist, and the dashboard's button scores them again.
    """
    if job.evaluation_id is not None or not job.tasks_created:
        return
    try:
        if active_sampling_after_new_tasks(project=Project.objects.get(pk=job.project_id)):
            generation.generation_log_append(job=job, lines=["[platform] queued reward-model scoring of the new tasks"])
    except Exception as exc:  # noqa: BLE001 - reported in the log, never fatal
        generation.generation_log_append(job=job, lines=[f"[platform] could not queue active sampling: {exc!r}"])


def _run_pass(*, job: GenerationJob, command: list[str], offset: int) -> str:
    def started(process, how: str) -> None:
        generation.generation_log_append(job=job, lines=[f"[platform] {how}: {' '.join(command)}"])
        generation.generation_started(job=job, pipeline_pid=process.pid)

    def flush(batch: Batch) -> str:
        step = offset + batch.step if batch.step is not None else None
        status = generation.generation_progress_flush(job=job, step=step, log_lines=batch.lines)
        batch.step, batch.lines, batch.points = None, [], []
        return status

    code, stop_reason, state = pipeline_execute(
        command=command, env=services.pipeline_env(), flush=flush, running=GenerationJob.Status.RUNNING,
        on_start=started, on_abort=lambda exc: _fail(job, f"The worker stopped the job: {exc!r}"),
    )
    if stop_reason == GenerationJob.Status.CANCELLING:
        generation.generation_finish(job=job, status=GenerationJob.Status.CANCELLED, log_line="[platform] cancelled")
        return Outcome.CANCELLED
    if stop_reason is not None:
        return Outcome.STOPPED
    if code == 0:
        return Outcome.SUCCEEDED
    error = f"The sampler failed: {failure_reason(code, state)}\n" + "\n".join(state.recent)
    _fail(job, error.strip())
    return Outcome.FAILED
