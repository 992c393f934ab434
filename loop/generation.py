"""Generation jobs: a model writes the candidates of the next comparison round.

Writes (services) and the reads that scope jobs to a user. A job samples K responses per prompt
from one model, or one response per prompt from each of two models for an A/B evaluation
(loop/evaluation.py). The gpu task (loop/tasks.py) runs the sampling as a subprocess through
loop/generation_runner.py; this module owns the job's status changes (through jobs/lifecycle.py)
and the creation of the comparison tasks, in the same transaction as the job's success.
"""

from __future__ import annotations

import math
import random
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from django.utils import timezone

from annotation.errors import InvalidInput
from annotation.ids import as_id
from annotation.models import Project, Prompt, Response, Task, TaskResponse
from annotation.roles import Action, project_access, project_ids_for
from annotation.shown_responses import shown_store
from jobs import lifecycle, recovery
from jobs.lifecycle import append_lines
from jobs.queue import job_enqueue
from training import registry
from training.models import Evaluation, GenerationJob, ModelVersion

from . import webhook_events

MIN_K, MAX_K = 2, GenerationJob.MAX_K
MAX_NEW_TOKENS = 2048
MAX_PROMPTS = 10_000
GENERATION_TASK = "training.generation_tasks.generation_execute"  # loop.tasks.generation_execute, pinned
SAMPLING_KINDS = (ModelVersion.Kind.BASE, ModelVersion.Kind.SFT, ModelVersion.Kind.POLICY)


# Choosing prompts ---------------------------------------------------------------------------------


def prompts_select(
    *, project: Project, prompt_ids: list | None = None, prompt_count: int | None = None, seed: int = 0,
    held_out: bool = False,
) -> list[int]:
    """The prompt ids a job samples for: the given ids (checked), or `prompt_count` chosen ones.

    Chosen prompts are the fresh ones first, in a seeded random order: for a generation round,
    prompts with no comparison task yet; for an evaluation (held_out=True), prompts no task has
    used at all, so neither model was trained on them. Then the others, if the count needs them.
    """
    if prompt_ids is not None and prompt_count is not None:
        raise InvalidInput("Give prompt_ids or prompt_count, not both.", field="prompt_ids")
    if prompt_ids is None and prompt_count is None:
        raise InvalidInput("Choose the prompts: prompt_ids (a list) or prompt_count (a number).", field="prompt_count")
    if prompt_ids is not None:
        if not isinstance(prompt_ids, (list, tuple)) or not prompt_ids:
            raise InvalidInput("prompt_ids must be a non-empty list of prompt ids.", field="prompt_ids")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in prompt_ids):
            raise InvalidInput("prompt_ids must hold integer prompt ids.", field="prompt_ids")
        if len(prompt_ids) > MAX_PROMPTS:
            raise InvalidInput(f"At most {MAX_PROMPTS} prompts per job.", field="prompt_ids")
        wanted = list(dict.fromkeys(prompt_ids))
        found = set(Prompt.objects.filter(project=project, pk__in=wanted).values_list("pk", flat=True))
        missing = [i for i in wanted if i not in found]
        if missing:
            shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise InvalidInput(f"prompt_ids: not prompts of this project: {shown}.", field="prompt_ids")
        return wanted
    if not isinstance(prompt_count, int) or isinstance(prompt_count, bool) or prompt_count < 1:
        raise InvalidInput("prompt_count must be a whole number of at least 1.", field="prompt_count")
    if prompt_count > MAX_PROMPTS:
        raise InvalidInput(f"At most {MAX_PROMPTS} prompts per job.", field="prompt_count")
    used_tasks = Task.objects.filter(prompt=OuterRef("pk"))
    if not held_out:
        used_tasks = used_tasks.filter(kind=Task.Kind.COMPARISON)
    rows = list(
        Prompt.objects.filter(project=project).annotate(used=Exists(used_tasks))
        .order_by("id").values_list("id", "used")
    )
    if not rows:
        raise InvalidInput("The project has no prompts: import some first.", field="prompt_count")
    if prompt_count > len(rows):
        raise InvalidInput(
            f"prompt_count is {prompt_count} but the project has {len(rows)} prompts.", field="prompt_count"
        )
    # Keyed by the seed alone: the same seed picks alike in a copy of the project (a rerun of a simulation).
    rng = random.Random(f"prompts:{seed}")
    fresh = [pk for pk, used in rows if not used]
    stale = [pk for pk, used in rows if used]
    rng.shuffle(fresh)
    rng.shuffle(stale)
    return (fresh + stale)[:prompt_count]


# Starting and cancelling -------------------------------------------------------------------------


def _check_model(model, *, project: Project, field: str) -> ModelVersion:
    registry.model_check(model, project=project, field=field)
    if model.kind not in SAMPLING_KINDS:
        raise InvalidInput(
            f"{field}: a {model.kind} model does not write responses; use a base, sft or policy model.", field=field
        )
    registry.model_files_check(model, field=field)
    return model


def _number(value, *, field: str, kind: type, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> float | int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok or not math.isfinite(value):
        raise InvalidInput(f"{field} must be {'an integer' if kind is int else 'a number'}.", field=field)
    value = kind(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else f"<= {high}"
        raise InvalidInput(f"{field} must be {' and '.join(p for p in (lo, hi) if p)}, not {value}.", field=field)
    return value


def generation_create(
    *, project: Project, model_version: ModelVersion, k: int, temperature: float = 1.0, top_p: float = 0.95,
    max_new_tokens: int = 48, prompt_ids: list[int] | None = None, prompt_count: int | None = None,
    created_by: AbstractBaseUser | None, evaluation: Evaluation | None = None, seed: int = 0,
) -> GenerationJob:
    """Check everything, store the queued job with its resolved prompts, and enqueue it after commit.

    With `evaluation`, the job samples ONE response per prompt (k must be 1) from each of the
    evaluation's two models; model_version must be its model A.
    """
    if created_by is not None:
        project_access(user=created_by, project_id=project.pk, action=Action.TRAIN)
    model_version = _check_model(model_version, project=project, field="model_version")
    model_b = None
    if evaluation is not None:
        if evaluation.project_id != project.pk or evaluation.model_a_id != model_version.pk:
            raise InvalidInput("The evaluation's project and model A must match the job's.", field="evaluation")
        if k != 1:
            raise InvalidInput("An evaluation samples one response per prompt from each model: k must be 1.", field="k")
        model_b = _check_model(evaluation.model_b, project=project, field="model_b")
    else:
        k = _number(k, field="k", kind=int, low=MIN_K, high=MAX_K)
    temperature = _number(temperature, field="temperature", kind=float, low=0.0, low_open=True, high=100.0)
    top_p = _number(top_p, field="top_p", kind=float, low=0.0, low_open=True, high=1.0)
    max_new_tokens = _number(max_new_tokens, field="max_new_tokens", kind=int, low=1, high=MAX_NEW_TOKENS)
    seed = _number(seed, field="seed", kind=int, low=0, high=2**31 - 1)
    chosen = prompts_select(project=project, prompt_ids=prompt_ids, prompt_count=prompt_count, seed=seed)
    with transaction.atomic():
        job = GenerationJob.objects.create(
            project=project, model_version=model_version, model_version_b=model_b, evaluation=evaluation,
            prompt_ids=chosen, prompt_count=prompt_count, k=k, temperature=temperature, top_p=top_p,
            max_new_tokens=max_new_tokens, seed=seed, total_steps=len(chosen) * (2 if model_b else 1),
            created_by=created_by,
        )
        transaction.on_commit(lambda: generation_enqueue(job_id=job.pk))
    return job


def generation_enqueue(*, job_id: int) -> None:
    job_enqueue(task_name=GENERATION_TASK, args=[job_id])


def generation_cancel(*, job: GenerationJob) -> GenerationJob:
    """A queued job ends at once; a running one becomes cancelling and its worker stops the sampler."""
    with transaction.atomic():
        job = lifecycle.job_cancel(model=GenerationJob, pk=job.pk, noun="job")
        if job.status == GenerationJob.Status.CANCELLED:
            _evaluation_follow(job=job)
    return job


# The worker's side: claim, progress, finish (jobs/lifecycle.py) ----------------------------------


def generation_claim(*, job_id: int, worker: str) -> GenerationJob | None:
    """Take a queued job, or restart a running one whose worker is gone. None: nothing to do (idempotent).

    Sampling is cheap to redo: a worker that takes a job over starts it again from the first prompt.
    """
    job, _ = lifecycle.job_claim(
        model=GenerationJob, pk=job_id, worker=worker, related=("project", "model_version", "model_version_b"),
        restart={"step": 0}, on_final=lambda ended: _evaluation_follow(job=ended),
    )
    if job is not None:
        generation_log_append(job=job, lines=[f"[platform] worker {worker} took the job"])
    return job


def generation_log_append(*, job: GenerationJob, lines: list[str]) -> None:
    lifecycle.job_log_append(model=GenerationJob, job=job, lines=lines)


def generation_started(*, job: GenerationJob, pipeline_pid: int) -> None:
    lifecycle.job_started(model=GenerationJob, job=job, pipeline_pid=pipeline_pid)


def generation_progress_flush(*, job: GenerationJob, step: int | None, log_lines: list[str]) -> str:
    """Store progress (step of the job's total), the log tail and the heartbeat. Returns the job's status now."""
    return lifecycle.job_progress_flush(model=GenerationJob, job=job, step=step, log_lines=log_lines)


def generation_finish(*, job: GenerationJob, status: str, error: str = "", log_line: str = "") -> GenerationJob:
    """End a job in a final status (only from running or cancelling: a final status never changes)."""
    with transaction.atomic():
        job = lifecycle.job_finish(model=GenerationJob, job=job, status=status, error=error, log_line=log_line)
        _evaluation_follow(job=job)
    return job


def _evaluation_follow(*, job: GenerationJob) -> None:
    """An evaluation's status follows its generation job."""
    if job.evaluation_id is None:
        return
    status = {
        GenerationJob.Status.SUCCEEDED: Evaluation.Status.LABELING,
        GenerationJob.Status.FAILED: Evaluation.Status.FAILED,
        GenerationJob.Status.CANCELLED: Evaluation.Status.CANCELLED,
    }.get(job.status)
    if status:
        Evaluation.objects.filter(pk=job.evaluation_id, status=Evaluation.Status.GENERATING).update(
            status=status, updated_at=timezone.now()
        )


def clean_texts(texts) -> tuple[list[str], int]:
    """Stripped, non-empty, distinct texts in their order, and how many exact duplicates were dropped."""
    kept: list[str] = []
    duplicates = 0
    for text in texts if isinstance(texts, list) else []:
        if not isinstance(text, str):
            continue
        text = text.replace("\x00", "").strip()  # PostgreSQL text cannot hold NUL
        if not text:
            continue
        if text in kept:
            duplicates += 1
            continue
        kept.append(text)
    return kept, duplicates


def display_order(*, job: GenerationJob, prompt_id: int, n: int) -> list[int]:
    """A random display order of n responses, reproducible from the job's seed."""
    order = list(range(n))
    random.Random(f"order:{job.pk}:{job.seed}:{prompt_id}").shuffle(order)
    return order


def _candidates(
    *, job: GenerationJob, outputs: list[dict[int, list]]
) -> tuple[dict[int, list[tuple[str, int]]], int, int]:
    """{prompt id: [(text, model id), ...]} for the prompts that make a task; plus skipped and duplicate counts."""
    skipped = duplicates = 0
    found: dict[int, list[tuple[str, int]]] = {}
    for prompt_id in job.prompt_ids:
        if job.model_version_b_id is None:
            texts, dropped = clean_texts(outputs[0].get(prompt_id, []))
            duplicates += dropped
            pairs = [(text, job.model_version_id) for text in texts[: job.k]]
        else:
            a, _ = clean_texts(outputs[0].get(prompt_id, []))
            b, _ = clean_texts(outputs[1].get(prompt_id, []))
            pairs = [(a[0], job.model_version_id)] if a else []
            if b and a and b[0] == a[0]:
                duplicates += 1  # both models wrote the same text: there is nothing to judge
            elif b:
                pairs.append((b[0], job.model_version_b_id))
        if len(pairs) < 2:
            skipped += 1
            continue
        found[prompt_id] = pairs
    return found, skipped, duplicates


def generation_complete(*, job: GenerationJob, outputs: list[dict[int, list]]) -> GenerationJob:
    """Make the comparison tasks from the sampler's output and mark the job succeeded, in one transaction.

    outputs: one {prompt id: [texts]} per model (two for an A/B job). Prompts with fewer than two
    distinct responses make no task and are counted in prompts_skipped. Nothing is created if the
    job was cancelled meanwhile.
    """
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if job.status != GenerationJob.Status.RUNNING:
            return job
        candidates, skipped, duplicates = _candidates(job=job, outputs=outputs)
        live = set(
            Prompt.objects.filter(project_id=job.project_id, pk__in=list(candidates)).values_list("pk", flat=True)
        )
        skipped += sum(1 for pk in candidates if pk not in live)
        candidates = {pk: pairs for pk, pairs in candidates.items() if pk in live}
        required = Project.objects.values_list("overlap", flat=True).get(pk=job.project_id)
        metadata = {"generation_job": job.pk}
        if job.evaluation_id:
            metadata["evaluation"] = job.evaluation_id
        responses = Response.objects.bulk_create(
            [
                Response(prompt_id=pk, text=text, source=Response.Source.MODEL, model_version_id=model_id)
                for pk, pairs in candidates.items()
                for text, model_id in pairs
            ],
            batch_size=1000,
        )
        tasks = Task.objects.bulk_create(
            [
                Task(project_id=job.project_id, prompt_id=pk, kind=Task.Kind.COMPARISON, required=required,
                     metadata=metadata)
                for pk in candidates
            ],
            batch_size=1000,
        )
        links, at = [], 0
        for task, (pk, pairs) in zip(tasks, candidates.items()):
            shown = responses[at: at + len(pairs)]
            at += len(pairs)
            for position, index in enumerate(display_order(job=job, prompt_id=pk, n=len(shown))):
                links.append(TaskResponse(task=task, response=shown[index], position=position))
        TaskResponse.objects.bulk_create(links, batch_size=1000)
        shown_store(
            {"task": [link.task_id for link in links], "response": [link.response_id for link in links],
             "position": [link.position for link in links]},
            [link.response.text for link in links],
        )
        now = timezone.now()
        job.tasks_created, job.responses_created = len(tasks), len(responses)
        job.prompts_skipped, job.duplicates_dropped = skipped, duplicates
        job.status, job.finished_at, job.heartbeat_at, job.pipeline_pid = GenerationJob.Status.SUCCEEDED, now, now, None
        job.step = job.total_steps
        job.log_tail = append_lines(job.log_tail, [
            f"[platform] created {len(tasks)} comparison tasks from {len(responses)} responses; "
            f"{skipped} prompts made no task, {duplicates} duplicates dropped"
        ])
        job.save(update_fields=[
            "tasks_created", "responses_created", "prompts_skipped", "duplicates_dropped", "status", "finished_at",
            "heartbeat_at", "pipeline_pid", "step", "log_tail", "updated_at",
        ])
        _evaluation_follow(job=job)
        webhook_events.generation_completed_emit(job=job)  # sent once this transaction commits
    return job


def generation_jobs_recover_lost(*, lost_after: timedelta | None = None) -> int:
    """Queue again the jobs whose worker is lost (jobs/recovery.py); they sample again from the start."""
    return recovery.jobs_recover(
        model=GenerationJob, noun="generation job", enqueue=lambda pk: generation_enqueue(job_id=pk),
        restart={"step": 0}, on_final=lambda job: _evaluation_follow(job=job),
        lost_after=lost_after or recovery.LOST_AFTER,
    )


# Reads ---------------------------------------------------------------------------------------------


def generation_job_list_for_user(*, user: AbstractBaseUser) -> QuerySet[GenerationJob]:
    if not user.is_authenticated:
        return GenerationJob.objects.none()
    return (
        GenerationJob.objects.filter(project_id__in=project_ids_for(user=user, action=Action.TRAIN))
        .select_related("project", "model_version", "model_version_b", "evaluation")
        .order_by("-created_at", "-id")
    )


def generation_job_get_for_user(*, user: AbstractBaseUser, job_id: int) -> GenerationJob:
    """The job if the user may train in its project; 404 otherwise (its existence is not revealed)."""
    job_id = as_id(job_id)
    job = generation_job_list_for_user(user=user).filter(pk=job_id).first() if job_id else None
    if job is None:
        raise Http404("No such generation job.")
    return job
