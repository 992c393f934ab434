"""The reward-model check as a job: queued by the button or the beat sweep, run on a `gpu` worker.

The scoring is active sampling's: the same pipeline (training.pipelines.score), started and
followed by the same code (training/scoring.py, through the job executor). A check is claimed with a
conditional UPDATE, so a message delivered twice does no harm, and one whose worker was lost
(quiet for STALE_RUNNING) may be queued and claimed again.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.errors import Conflict, ServiceError
from annotation.models import Annotation, Project
from jobs.outcome import Outcome
from jobs.queue import job_enqueue
from training import registry
from training.models import ModelVersion, RewardModelCheck
from training.scoring import STALE_RUNNING, score_command, score_pipeline_run, scores_read
from training.snapshots import storage_path

from .labels import current_policy, newest_labels, project_reward_models, scoring_rows
from .rule import pair_agreement, ranking_pairs

REFRESH_SECONDS = getattr(settings, "REWARD_CHECK_REFRESH_SECONDS", 6 * 3600)
Status = RewardModelCheck.Status
CHECK_TASK = "training.scoring_tasks.reward_check_run"  # training.tasks.reward_check_run, by its pinned name


def _busy() -> Q:
    return Q(status__in=[Status.QUEUED, Status.RUNNING], updated_at__gt=timezone.now() - STALE_RUNNING)


def reward_check_schedule(*, project: Project, reward_model: ModelVersion) -> RewardModelCheck:
    """Queue the check of one reward model in the project. Conflict while one is queued or running.

    Raises InvalidInput when the model's files are gone. The message goes out after the commit.
    """
    registry.model_files_check(reward_model, field="reward_model")
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                check, created = RewardModelCheck.objects.get_or_create(
                    reward_model=reward_model, project=project,
                    defaults={"status": Status.QUEUED, "message": "Waiting for a gpu worker."},
                )
        except IntegrityError:  # a concurrent first schedule made the row
            check, created = RewardModelCheck.objects.get(reward_model=reward_model, project=project), False
        if not created:
            claimed = RewardModelCheck.objects.filter(pk=check.pk).exclude(_busy()).update(
                status=Status.QUEUED, message="Waiting for a gpu worker.", updated_at=now
            )
            if not claimed:
                raise Conflict(f"{reward_model.name} is being checked already.", field="reward_model")
        check_id = check.pk

        transaction.on_commit(lambda: job_enqueue(task_name=CHECK_TASK, args=[check_id]))
    check.refresh_from_db()
    return check


def reward_checks_schedule_project(*, project: Project) -> list[RewardModelCheck]:
    """Queue the check of each reward model of the project that is not being checked already (the button)."""
    queued = []
    for model in project_reward_models(project=project):
        try:
            queued.append(reward_check_schedule(project=project, reward_model=model))
        except Conflict:
            continue
    return queued


def reward_checks_refresh() -> int:
    """The beat sweep: queue the checks that are older than REFRESH_SECONDS and have new labels since."""
    due = timezone.now() - timedelta(seconds=REFRESH_SECONDS)
    reward_models = ModelVersion.objects.filter(kind=ModelVersion.Kind.REWARD)
    projects = Project.objects.filter(
        Q(model_versions__in=reward_models) | Q(reward_model__kind=ModelVersion.Kind.REWARD)
    ).distinct()
    queued = 0
    for project in projects:
        labels = Annotation.objects.filter(project=project, kind=Annotation.Kind.COMPARISON)
        for model in project_reward_models(project=project):
            check = RewardModelCheck.objects.filter(reward_model=model, project=project).first()
            if check is not None and check.updated_at > due:
                continue  # checked (or queued, or failed) lately
            if check is not None and check.computed_at is not None:
                labels_since = labels.filter(created_at__gt=check.computed_at)
            else:
                labels_since = labels
            if not labels_since.exists():
                continue  # nothing new to judge it on
            try:
                reward_check_schedule(project=project, reward_model=model)
            except ServiceError:  # a model whose files are gone, one being checked: the next sweep tries again
                continue
            queued += 1
    return queued


# Execution (gpu worker) -------------------------------------------------------------------------


def _claim(check_id: int) -> RewardModelCheck | None:
    stale = timezone.now() - STALE_RUNNING
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, updated_at__lte=stale)
    claimed = RewardModelCheck.objects.filter(claimable, pk=check_id).update(
        status=Status.RUNNING, message="Starting.", updated_at=timezone.now()
    )
    if not claimed:
        return None
    return RewardModelCheck.objects.select_related("reward_model", "project").get(pk=check_id)


def _status_set(check_id: int, *, status: str, message: str, **result) -> None:
    RewardModelCheck.objects.filter(pk=check_id).update(
        status=status, message=message[:4000], updated_at=timezone.now(), **result
    )


def reward_check_execute(*, check_id: int) -> str:
    """Score the policy's responses in the newest labels with the reward model and store the agreement."""
    check = _claim(check_id)
    if check is None:
        return Outcome.SKIPPED
    project, model = check.project, check.reward_model
    policy = current_policy(project=project)
    if policy is None:
        _status_set(check.pk, status=Status.SUCCEEDED, policy=None, agreement=None, labels=0, pairs=0,
                    computed_at=timezone.now(), message="No model has written comparison candidates yet.")
        return Outcome.SUCCEEDED
    labels, policy_responses = newest_labels(project=project, policy=policy)
    pairs = [pair for _, _, ranking in labels for pair in ranking_pairs(ranking, policy_responses)]
    needed = {response for pair in pairs for response in pair}
    if not pairs:
        _status_set(check.pk, status=Status.SUCCEEDED, policy=policy, agreement=None, labels=len(labels), pairs=0,
                    computed_at=timezone.now(), message=f"No ranked pair of {policy.name}'s responses yet.")
        return Outcome.SUCCEEDED
    folder = storage_path(f"reward-checks/{check.pk}/{uuid.uuid4().hex}")
    try:
        input_file, output_file = folder / "responses.jsonl", folder / "scores.jsonl"
        _write_jsonl(input_file, scoring_rows(response_ids=needed))

        def progress(step: int) -> None:
            _status_set(check.pk, status=Status.RUNNING, message=f"Scored {step} of {len(needed)} responses.")

        command = score_command(model_dir=registry.model_location(model), input_file=input_file,
                                output_file=output_file)
        code, error = score_pipeline_run(command=command, on_progress=progress)
        if code != 0 or error:
            _status_set(check.pk, status=Status.FAILED,
                        message=f"Scoring failed with {model.name} ({model.path}): {error}".strip())
            return Outcome.FAILED
        agreement = pair_agreement(pairs, scores_read(path=output_file))
    except Exception as exc:  # an unreadable model dir, a full disk: say what happened on the page
        _status_set(check.pk, status=Status.FAILED, message=f"Scoring failed: {exc}")
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _status_set(check.pk, status=Status.SUCCEEDED, policy=policy, agreement=agreement, labels=len(labels),
                pairs=len(pairs), computed_at=timezone.now(),
                message=f"Scored {len(needed)} responses of {policy.name} in {len(labels)} labels.")
    return Outcome.SUCCEEDED


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
