"""Active sampling: label first the comparisons where the project's reward model is least sure.

A project with a reward model (Project.reward_model) can have its open comparison tasks scored:

1. active_sampling_schedule() (the dashboard and settings button, or a generation job that has
   just made tasks) marks the project's scoring queued and enqueues the task
   training.scoring_tasks.active_sampling_run (loop/tasks.py) on the `gpu` queue after the commit.
2. The task calls active_sampling_execute(). It claims the project's scoring with a conditional
   UPDATE (a redelivered message does no harm), writes each distinct response of the open
   comparison tasks as {"id": response id, "messages": prompt + response} under STORAGE_ROOT,
   and runs `python -m training.pipelines.score` through the job executor (training/scoring.py):
   torch never loads in the worker.
   Progress lines become the project's scoring message.
3. scores_store() writes each TaskResponse's score and the model that made it, and each task's
   margin (the gap between its two highest scores) and priority, PRIORITY_BASE minus the margin
   in thousandths: the smallest margin gets the highest priority, and claim_next takes tasks by
   -priority, then id. Scored tasks stay ahead of unscored ones (priority >= 1 > 0).

Submits on scored tasks record their agreement with the scores (annotation.edits), and the
dashboard shows it (annotation.dashboard.dashboard_reward_agreement).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotation.errors import Conflict, InvalidInput
from annotation.models import Project, Task, TaskResponse
from jobs.outcome import Outcome
from jobs.queue import job_enqueue
from training import registry
from training.models import ModelVersion
from training.registry import model_location
from training.scoring import STALE_RUNNING, score_command, score_pipeline_run, scores_read
from training.snapshots import storage_path

PRIORITY_BASE = 1_000_000
MARGIN_SCALE = 1000  # priority units per unit of reward margin
WRITE_BATCH = 1000
SCORING_TASK = "training.scoring_tasks.active_sampling_run"  # loop.tasks.active_sampling_run, by its pinned name
Status = Project.ScoringStatus


def priority_for_margin(margin: float) -> int:
    """The claim priority of a scored task: higher for a smaller margin, always between 1 and PRIORITY_BASE."""
    return PRIORITY_BASE - min(round(abs(margin) * MARGIN_SCALE), PRIORITY_BASE - 1)


def _status_set(*, project_id: int, status: str, message: str) -> None:
    Project.objects.filter(pk=project_id).update(
        scoring_status=status, scoring_message=message[:4000], scoring_updated_at=timezone.now()
    )


# Scheduling (web side) ---------------------------------------------------------------------------


def active_sampling_schedule(*, project: Project) -> None:
    """Queue the scoring of the project's open comparisons by its reward model. For the generation job too.

    Raises InvalidInput when the project has no reward model, and Conflict while a scoring is
    queued or running. The Celery message goes out only when the surrounding transaction commits.
    """
    if project.reward_model_id is None:
        raise InvalidInput("Choose the project's reward model in its settings first.", field="reward_model")
    registry.model_files_check(project.reward_model, field="reward_model")
    # A scoring queued or running with no sign of life for STALE_RUNNING lost its message or worker.
    stale = timezone.now() - STALE_RUNNING
    busy = Q(scoring_status__in=[Status.QUEUED, Status.RUNNING], scoring_updated_at__gt=stale)
    with transaction.atomic():
        claimed = (
            Project.objects.filter(pk=project.pk)
            .exclude(busy)
            .update(scoring_status=Status.QUEUED, scoring_message="Waiting for a gpu worker.",
                    scoring_updated_at=timezone.now())
        )
        if not claimed:
            raise Conflict("The reward model is scoring this project's tasks already.", field="reward_model")
        args = [project.pk, project.reward_model_id]
        transaction.on_commit(lambda: job_enqueue(task_name=SCORING_TASK, args=args))
    project.refresh_from_db(fields=["scoring_status", "scoring_message", "scoring_updated_at"])


def active_sampling_after_new_tasks(*, project: Project) -> bool:
    """For a job that has just made comparison tasks: queue a scoring if the project has a reward model.

    Never raises for the ordinary cases: False when there is no reward model, or when a scoring is
    queued or running already (it may miss the newest tasks; the button scores them again).
    """
    if project.reward_model_id is None:
        return False
    try:
        active_sampling_schedule(project=project)
    except Conflict:
        return False
    return True


# Execution (worker side) -------------------------------------------------------------------------


def _claim(*, project_id: int, reward_model_id: int) -> Project | None:
    """Move a queued (or stale running) scoring to running. None: nothing to do, or another worker has it."""
    stale = timezone.now() - STALE_RUNNING
    claimable = Q(scoring_status=Status.QUEUED) | Q(scoring_status=Status.RUNNING, scoring_updated_at__lte=stale)
    claimed = (
        Project.objects.filter(claimable, pk=project_id, reward_model_id=reward_model_id)
        .update(scoring_status=Status.RUNNING, scoring_message="Starting.", scoring_updated_at=timezone.now())
    )
    if not claimed:
        # The reward model changed (or was cleared) since it was queued: say so instead of hanging.
        Project.objects.filter(pk=project_id, scoring_status=Status.QUEUED).exclude(
            reward_model_id=reward_model_id
        ).update(scoring_status=Status.FAILED, scoring_message="The project's reward model changed; start again.",
                 scoring_updated_at=timezone.now())
        return None
    return Project.objects.select_related("reward_model").get(pk=project_id)


def _open_comparisons(*, project: Project):
    return TaskResponse.objects.filter(
        task__project=project, task__kind=Task.Kind.COMPARISON, task__status=Task.Status.OPEN
    )


def scoring_input_write(*, project: Project, path: Path) -> int:
    """One JSONL row per distinct response of the open comparisons: {"id": response id, "messages": [...]}."""
    rows = (
        _open_comparisons(project=project)
        .order_by("response_id")
        .values_list("response_id", "response__text", "response__prompt__messages")
        .iterator(chunk_size=WRITE_BATCH)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    n, previous = 0, None
    with open(path, "w", encoding="utf-8") as f:
        for response_id, text, messages in rows:
            if response_id == previous:
                continue  # a response shown by several tasks is scored once
            previous = response_id
            chat = list(messages or []) + [{"role": "assistant", "content": text}]
            f.write(json.dumps({"id": response_id, "messages": chat}, ensure_ascii=False) + "\n")
            n += 1
    return n


def scores_store(*, project: Project, reward_model: ModelVersion, scores: dict[int, float]) -> dict:
    """Store the scores on the open comparisons' TaskResponses, then each task's margin and priority.

    Writes go in batches, each its own short transaction, so claims never wait long on a task row.
    A task with fewer than two scored responses keeps its priority. Returns counts.
    """
    now = timezone.now()
    links = list(
        _open_comparisons(project=project).order_by("task_id", "position").values_list("id", "task_id", "response_id")
    )
    by_task: dict[int, list[float]] = {}
    updates = []
    for link_id, task_id, response_id in links:
        score = scores.get(response_id)
        if score is None:
            continue
        updates.append(TaskResponse(id=link_id, reward_score=score, reward_model_id=reward_model.pk, scored_at=now))
        by_task.setdefault(task_id, []).append(score)
    for start in range(0, len(updates), WRITE_BATCH):
        with transaction.atomic():
            TaskResponse.objects.bulk_update(updates[start:start + WRITE_BATCH], ["reward_score", "reward_model", "scored_at"])
    tasks = []
    for task_id, values in by_task.items():
        if len(values) < 2:
            continue
        top, second = sorted(values, reverse=True)[:2]
        margin = top - second
        tasks.append(Task(id=task_id, reward_margin=margin, priority=priority_for_margin(margin)))
    for start in range(0, len(tasks), WRITE_BATCH):
        with transaction.atomic():
            Task.objects.bulk_update(tasks[start:start + WRITE_BATCH], ["reward_margin", "priority"])
    return {"responses": len(scores), "task_responses": len(updates), "tasks": len(tasks)}


def _run_scoring(*, project: Project, command: list[str], total: int) -> tuple[int, str]:
    """Run the scoring subprocess; its progress lines become the project's scoring message."""

    def progress(step: int) -> None:
        _status_set(project_id=project.pk, status=Status.RUNNING, message=f"Scored {step} of {total} responses.")

    return score_pipeline_run(command=command, on_progress=progress)


def active_sampling_execute(*, project_id: int, reward_model_id: int) -> str:
    """Score the project's open comparisons with its reward model and reprioritise them (the gpu task's body)."""
    project = _claim(project_id=project_id, reward_model_id=reward_model_id)
    if project is None:
        return Outcome.SKIPPED
    reward_model = project.reward_model
    folder = storage_path(f"scoring/{project.pk}/{uuid.uuid4().hex}")
    try:
        input_file, output_file = folder / "responses.jsonl", folder / "scores.jsonl"
        total = scoring_input_write(project=project, path=input_file)
        if total == 0:
            _status_set(project_id=project.pk, status=Status.SUCCEEDED,
                        message="No open comparison task to score.")
            return Outcome.SUCCEEDED
        command = score_command(model_dir=model_location(reward_model), input_file=input_file,
                                output_file=output_file)
        code, error = _run_scoring(project=project, command=command, total=total)
        if code != 0 or error:
            _status_set(project_id=project.pk, status=Status.FAILED,
                        message=f"Scoring failed with {reward_model.name} ({reward_model.path}): {error}".strip())
            return Outcome.FAILED
        counts = scores_store(project=project, reward_model=reward_model, scores=scores_read(path=output_file))
    except Exception as exc:  # an unreadable model dir, a full disk: say what happened on the page
        _status_set(project_id=project.pk, status=Status.FAILED, message=f"Scoring failed: {exc}")
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _status_set(
        project_id=project.pk, status=Status.SUCCEEDED,
        message=f"Scored {counts['responses']} responses with {reward_model.name}; "
                f"{counts['tasks']} open comparison task{'s' if counts['tasks'] != 1 else ''} reprioritised.",
    )
    return Outcome.SUCCEEDED
