"""Reads of the training app, each scoped to what the user may see."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import Http404

from annotation.ids import as_id
from annotation.roles import Action, project_ids_for

from . import services
from .models import MetricPoint, ModelVersion, TrainingRun


def run_list_for_user(*, user: AbstractBaseUser) -> QuerySet[TrainingRun]:
    """Runs of the projects where the user may train (admins and engineers; never labelers)."""
    return (
        TrainingRun.objects.filter(project_id__in=project_ids_for(user=user, action=Action.TRAIN))
        .select_related("project", "base_model", "reward_model", "snapshot", "output_model")
        .order_by("-created_at", "-id")
    )


def run_get_for_user(*, user: AbstractBaseUser, run_id) -> TrainingRun:
    """The run if the user may train in its project; 404 otherwise (its existence is not revealed)."""
    run_id = as_id(run_id)
    run = run_list_for_user(user=user).filter(pk=run_id).first() if run_id else None
    if run is None:
        raise Http404("No such training run.")
    return run


def model_list_for_user(*, user: AbstractBaseUser) -> QuerySet[ModelVersion]:
    """Models of the projects where the user may train, plus the global ones; nothing for anyone else."""
    projects = project_ids_for(user=user, action=Action.TRAIN)
    if not user.is_authenticated or not (user.is_superuser or projects.exists()):
        return ModelVersion.objects.none()
    return (
        ModelVersion.objects.filter(Q(project__isnull=True) | Q(project_id__in=projects))
        .select_related("parent", "produced_by", "project")
        .order_by("-created_at", "-id")
    )


def run_metric_series(*, run: TrainingRun) -> dict[str, list[list[float]]]:
    """{metric name: [[step, value], ...]} in step order."""
    series: dict[str, list[list[float]]] = {}
    rows = MetricPoint.objects.filter(run=run).order_by("name", "step", "id").values_list("name", "step", "value")
    for name, step, value in rows.iterator(chunk_size=2000):
        series.setdefault(name, []).append([step, value])
    return series


def run_latest_metrics(*, run: TrainingRun) -> dict[str, float]:
    """The last logged value of each metric."""
    latest: dict[str, float] = {}
    for name, points in run_metric_series(run=run).items():
        latest[name] = points[-1][1]
    return latest


def pipeline_defaults(*, kind: str) -> dict:
    """The user-settable config fields of a run kind: {name: {"default", "type", "help", ...}}."""
    return services.pipeline_fields(kind=kind)
