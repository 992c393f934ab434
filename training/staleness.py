"""Is the reward model still right? Each reward model's agreement with the newest human labels on the
current policy's samples: the staleness signal that tells the team to collect again.

See docs/quality.md, "Is the reward model still right?". For each reward model of a project (its
own reward models, and the project's reward model if that one is global):

1. The **current policy** is the newest model version, other than a reward model, that wrote
   responses shown by the project's comparison tasks (Response.model_version).
2. The **labels** are the newest LABELS counting comparison annotations (not skipped, rejected or
   corrected, with a ranking) on tasks that show at least two of the policy's responses.
3. Each label's ranking gives ordered pairs (better, worse) of different groups; the pairs between
   two of the policy's responses are kept. The reward model scores those responses on the `gpu`
   queue, through the same scoring pipeline and subprocess as active sampling
   (active_sampling.score_pipeline_run, training.pipelines.score).
4. **Agreement** is the share of the pairs the scores order the same way (equal scores count
   half), the pairwise accuracy that the reward pipeline reports as `eval_accuracy` on held-out
   pairs. It is stored in RewardModelCheck with the policy, the label and pair counts, and when.
5. **Stale** when the agreement is below STALE_BELOW, or more than STALE_DROP below the model's
   own eval accuracy: the labels of the current policy's samples no longer look like the data the
   model was trained on, so it is time to collect comparisons again and retrain it.

A beat sweep (reward_checks_refresh) queues the check of every reward model whose project has new
labels since its last check and whose check is older than REFRESH_SECONDS; engineers and admins
queue it at once from the dashboard or the API.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from annotation.errors import Conflict
from annotation.models import ANNOTATION_COUNTS, Annotation, Project, Task, TaskResponse

from . import registry
from .active_sampling import STALE_RUNNING, score_command, score_pipeline_run, scores_read
from .models import ModelVersion, RewardModelCheck
from .snapshots import storage_path

LABELS = getattr(settings, "REWARD_CHECK_LABELS", 200)
REFRESH_SECONDS = getattr(settings, "REWARD_CHECK_REFRESH_SECONDS", 6 * 3600)
STALE_BELOW = 0.6
STALE_DROP = 0.1
MIN_PAIRS = 10  # fewer pairs than this: too few labels to tell
Status = RewardModelCheck.Status


class Outcome:
    SKIPPED = "skipped"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# The numbers ------------------------------------------------------------------------------------


def ranking_pairs(ranking: list, keep: set[int]) -> list[tuple[int, int]]:
    """The ordered (better, worse) pairs of a ranking's groups, between responses in `keep`; ties give none."""
    groups = [[g] if not isinstance(g, list) else g for g in ranking or []]
    pairs = []
    for i, better in enumerate(groups):
        for worse in groups[i + 1:]:
            pairs.extend((a, b) for a in better for b in worse if a in keep and b in keep)
    return pairs


def pair_agreement(pairs: list[tuple[int, int]], scores: dict[int, float]) -> float | None:
    """The share of pairs whose better response the scores put higher (equal scores count half)."""
    scored = [(scores[a], scores[b]) for a, b in pairs if a in scores and b in scores]
    if not scored:
        return None
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in scored) / len(scored)


def eval_accuracy(model: ModelVersion) -> float | None:
    value = (model.metrics or {}).get("eval_accuracy")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def staleness(*, agreement: float | None, pairs: int, model: ModelVersion) -> tuple[bool, str]:
    """(stale, why): below STALE_BELOW, or more than STALE_DROP below the model's own eval accuracy."""
    if agreement is None or pairs < MIN_PAIRS:
        return False, f"Too few labels to tell: {pairs} pair{'s' if pairs != 1 else ''}, at least {MIN_PAIRS} needed."
    own = eval_accuracy(model)
    if agreement < STALE_BELOW:
        return True, (f"Agrees with {agreement:.0%} of the newest labels, below {STALE_BELOW:.0%}: "
                      "collect comparisons of the current policy again and retrain the reward model.")
    if own is not None and agreement < own - STALE_DROP:
        return True, (f"Agrees with {agreement:.0%} of the newest labels against {own:.0%} on its own held-out "
                      "pairs: collect comparisons of the current policy again and retrain the reward model.")
    return False, "Agrees with the newest labels as well as expected."


# Whose labels -----------------------------------------------------------------------------------


def project_reward_models(*, project: Project) -> QuerySet[ModelVersion]:
    """The project's reward models, and its active-sampling reward model when that one is global."""
    scope = Q(project=project)
    if project.reward_model_id is not None:
        scope |= Q(pk=project.reward_model_id)
    return ModelVersion.objects.filter(scope, kind=ModelVersion.Kind.REWARD).order_by("-created_at", "-id")


def current_policy(*, project: Project) -> ModelVersion | None:
    """The newest non-reward model version that wrote responses shown by the project's comparison tasks."""
    shown = TaskResponse.objects.filter(
        task__project=project, task__kind=Task.Kind.COMPARISON, response__model_version__isnull=False
    ).values("response__model_version_id")
    return (
        ModelVersion.objects.filter(pk__in=shown).exclude(kind=ModelVersion.Kind.REWARD)
        .order_by("-created_at", "-id").first()
    )


def newest_labels(*, project: Project, policy: ModelVersion, limit: int | None = None) -> tuple[list, set[int]]:
    """([(annotation id, task id, ranking), ...] newest first, the policy's response ids those tasks show).

    At most `limit` labels (LABELS by default).
    """
    limit = limit or LABELS
    policy_tasks = (
        TaskResponse.objects.filter(task__project=project, response__model_version=policy)
        .values("task_id").annotate(n=Count("id")).filter(n__gte=2).values("task_id")
    )
    rows = list(
        Annotation.objects.filter(ANNOTATION_COUNTS, project=project, kind=Annotation.Kind.COMPARISON,
                                  task_id__in=policy_tasks)
        .exclude(ranking=[]).order_by("-created_at", "-id").values_list("id", "task_id", "ranking")[:limit]
    )
    responses = set(
        TaskResponse.objects.filter(task_id__in={task_id for _, task_id, _ in rows}, response__model_version=policy)
        .values_list("response_id", flat=True)
    )
    return rows, responses


def scoring_rows(*, response_ids: set[int]) -> list[dict]:
    """{"id": response id, "messages": prompt + response}, the scoring pipeline's input, in id order."""
    from annotation.models import Response

    rows = Response.objects.filter(pk__in=response_ids).order_by("pk").values_list("pk", "text", "prompt__messages")
    return [{"id": pk, "messages": list(messages or []) + [{"role": "assistant", "content": text}]}
            for pk, text, messages in rows]


# Scheduling (web side and beat) ---------------------------------------------------------------------


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

        def enqueue() -> None:
            from .scoring_tasks import reward_check_run

            reward_check_run.delay(check_id)

        transaction.on_commit(enqueue)
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
            except Exception:  # a model whose files are gone, one being checked: the next sweep tries again
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


# Reads for the pages and the API ----------------------------------------------------------------


def check_summary(check: RewardModelCheck) -> dict:
    """What the registry, the dashboard and the API show of a check."""
    stale, why = staleness(agreement=check.agreement, pairs=check.pairs, model=check.reward_model)
    return {
        "reward_model": check.reward_model_id,
        "reward_model_name": check.reward_model.name,
        "project": check.project_id,
        "project_name": check.project.name,
        "status": check.status,
        "message": check.message,
        "policy": check.policy_id,
        "policy_name": check.policy.name if check.policy_id else None,
        "agreement": check.agreement,
        "agreement_percent": round(100 * check.agreement, 1) if check.agreement is not None else None,
        "eval_accuracy": eval_accuracy(check.reward_model),
        "labels": check.labels,
        "pairs": check.pairs,
        "computed_at": check.computed_at,
        "stale": stale,
        "hint": why if check.computed_at else "Not computed yet.",
    }


def _checks() -> QuerySet[RewardModelCheck]:
    return RewardModelCheck.objects.select_related("reward_model", "project", "policy")


def reward_checks_for_project(*, project: Project) -> list[dict]:
    """Each reward model of the project with its check (None where it was never checked), for the dashboard."""
    checks = {c.reward_model_id: c for c in _checks().filter(project=project)}
    return [
        {"model": model, "check": check_summary(checks[model.pk]) if model.pk in checks else None}
        for model in project_reward_models(project=project)
    ]


def reward_checks_for_models(*, model_ids: list[int], project_ids) -> dict[int, list[dict]]:
    """{reward model id: [its checks' summaries in these projects]}, for the registry (project_ids: the user's)."""
    found: dict[int, list[dict]] = {}
    for check in _checks().filter(reward_model_id__in=model_ids, project_id__in=project_ids).order_by("project_id"):
        found.setdefault(check.reward_model_id, []).append(check_summary(check))
    return found
