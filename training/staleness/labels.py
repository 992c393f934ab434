"""Whose labels a reward model is checked against: the current policy, its newest labels, the rows to score."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from annotation.models import ANNOTATION_COUNTS, Annotation, Project, Task, TaskResponse
from training.models import ModelVersion

LABELS = getattr(settings, "REWARD_CHECK_LABELS", 200)


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
