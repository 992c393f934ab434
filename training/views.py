"""The ML engineer's pages: runs, a new run, one run live, and the model registry.

Thin views: reads come from training.selectors, writes go through training.services, and the
live parts of the pages poll the training API (/api/training-runs/{id}/).
"""

import json
from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from annotation.errors import ServiceError
from annotation.ids import as_id
from annotation.roles import Action, may_anywhere, project_access, project_ids_for, projects_for, require_anywhere

from . import memory_estimates, selectors, services, staleness, trackers
from .forms import RunForm, config_groups, config_value_to_text
from .models import ModelVersion, TrainingRun

RUNS_PER_PAGE = 50
METRIC_GROUPS = [
    # (chart id, title, does a metric name belong to it): one family per chart, each on its own axis,
    # so a loss of 2 and an accuracy of 0.9 or a KL of 0.01 are never squeezed onto one scale.
    # static/js/training_run.js groups the live series the same way.
    ("loss", "Loss", lambda name: "loss" in name),
    ("margin", "Reward margin", lambda name: "margin" in name),
    ("reward", "Reward / accuracy", lambda name: any(w in name for w in ("reward", "accuracy", "win"))),
    ("kl", "KL", lambda name: name == "kl" or name.startswith(("kl/", "kl_")) or name.endswith(("/kl", "_kl"))),
    ("entropy", "Entropy", lambda name: "entropy" in name),
]


def run_api_url(run_id: int) -> str:
    return f"/api/training-runs/{run_id}/"


def _duration(run: TrainingRun, now: datetime) -> timedelta | None:
    if run.started_at is None:
        return None
    return (run.finished_at or now) - run.started_at


def format_duration(delta: timedelta | None) -> str:
    if delta is None:
        return ""
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def _require_training(user) -> None:
    """The training pages are for users who may train somewhere (admins and engineers): 403 for the rest."""
    if not user.is_superuser:
        require_anywhere(user=user, action=Action.TRAIN)


# Runs list --------------------------------------------------------------------------------------


@login_required
def run_list(request):
    _require_training(request.user)
    projects = list(projects_for(user=request.user, action=Action.TRAIN))
    runs = selectors.run_list_for_user(user=request.user).select_related("project", "base_model", "output_model")
    project_id = as_id(request.GET.get("project"))
    status = request.GET.get("status") or ""
    if project_id is not None:
        runs = runs.filter(project_id=project_id)
    if status == "active":
        runs = runs.filter(status__in=TrainingRun.ACTIVE)
    elif status in TrainingRun.Status.values:
        runs = runs.filter(status=status)
    else:
        status = ""
    page = Paginator(runs.order_by("-created_at", "-id"), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {
            "run": run,
            "active": run.status in TrainingRun.ACTIVE,
            "percent": round(100 * run.progress, 1),
            "duration": format_duration(_duration(run, now)),
            "api_url": run_api_url(run.pk),
            "output_model": getattr(run, "output_model", None),  # a missing reverse one-to-one is an AttributeError
        }
        for run in page
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "training/run_list.html", {
        "nav_section": "runs",
        "rows": rows,
        "page": page,
        "projects": projects,
        "statuses": TrainingRun.Status.choices,
        "selected_project": project_id,
        "selected_status": status,
        "filter_query": query.urlencode(),
        "can_start": bool(projects),
    })


# New run ------------------------------------------------------------------------------------------


def _run_form(request, data=None) -> RunForm:
    train_projects = projects_for(user=request.user, action=Action.TRAIN)
    defaults = {kind: selectors.pipeline_defaults(kind=kind) for kind in TrainingRun.Kind.values}
    initial = {"kind": request.GET.get("kind") if request.GET.get("kind") in defaults else TrainingRun.Kind.SFT}
    initial_config = {}
    if request.GET.get("like"):  # "New run like this": everything the run was started with
        like = selectors.run_get_for_user(user=request.user, run_id=request.GET["like"])  # 404 if not theirs
        initial.update({"kind": like.kind, "project": like.project_id, "base_model": like.base_model_id,
                        "reward_model": like.reward_model_id})
        initial_config = dict(like.config or {})
        filters = like.data_filters or {}
        initial.update({f"data_{name}": value for name, value in filters.items()})
    if request.GET.get("project"):
        initial["project"] = request.GET["project"]
    if request.GET.get("base_model"):
        initial["base_model"] = request.GET["base_model"]
    models = selectors.model_list_for_user(user=request.user).order_by("name")
    return RunForm(data, projects=train_projects, models=models, defaults=defaults, initial=initial,
                   initial_config=initial_config)


@login_required
def run_new(request):
    project_id = request.POST.get("project") if request.method == "POST" else request.GET.get("project")
    if project_id not in (None, ""):  # a project the user may not train in, or no project at all: 404/403
        project_access(user=request.user, project_id=project_id, action=Action.TRAIN)
    if not may_anywhere(user=request.user, action=Action.TRAIN):
        return render(request, "training/run_new.html", {"no_projects": True, "nav_section": "runs"}, status=403)
    form = _run_form(request, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and form.check_config():  # every config problem at once, before anything is queued
            kind = form.cleaned_data["kind"]
            try:
                run = services.run_create(
                    kind=kind,
                    project=form.cleaned_data["project"],
                    base_model=form.cleaned_data["base_model"],
                    reward_model=form.cleaned_data["reward_model"] if kind == TrainingRun.Kind.RLHF else None,
                    config=form.config(),
                    created_by=request.user,
                    data=form.data_filters(),
                )
            except ServiceError as error:
                form.add_service_error(error)
            else:
                return redirect("training-run-detail", run_id=run.pk)
        status = 400
    return render(request, "training/run_new.html", {
        "nav_section": "runs",
        "form": form,
        "preset_fields": json.dumps(memory_estimates.preset_fields()),
        "config_sections": form.config_sections(),
        "defaults": form.defaults,
        "config_groups": config_groups(form.defaults),
        "kind_labels": dict(TrainingRun.Kind.choices),
    }, status=status)


# One run ----------------------------------------------------------------------------------------------


def metric_charts(series: dict[str, list]) -> list[dict]:
    """Group a run's metric series into the charts the run page draws (only charts with data)."""
    charts = {key: {"id": key, "title": title, "metrics": []} for key, title, _ in METRIC_GROUPS}
    for name in sorted(series):
        lowered = name.lower()
        if "learning_rate" in lowered or lowered.endswith("lr"):
            continue
        for key, _, belongs in METRIC_GROUPS:
            if belongs(lowered):
                charts[key]["metrics"].append(name)
                break
    return [chart for chart in charts.values() if chart["metrics"]]


def _time_left(run: TrainingRun, now) -> str:
    """"about 4 min" from the pace since the run started, while it runs; "" otherwise."""
    if run.status not in TrainingRun.ACTIVE or not run.started_at or not run.step or not run.total_steps:
        return ""
    if run.step >= run.total_steps:
        return ""
    elapsed = (now - run.started_at).total_seconds()
    return "about " + format_duration(timedelta(seconds=elapsed / run.step * (run.total_steps - run.step)))


@login_required
def run_detail(request, run_id: int):
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    series = selectors.run_metric_series(run=run)
    output_model = ModelVersion.objects.filter(produced_by=run).first()
    latest = {name: format_metric(points[-1][1]) for name, points in sorted(series.items()) if points}
    charts = metric_charts(series)
    return render(request, "training/run_detail.html", {
        "nav_section": "runs",
        "run": run,
        "active": run.status in TrainingRun.ACTIVE,
        "percent": round(100 * _page_progress(run), 1),
        "duration": format_duration(_duration(run, timezone.now())),
        "eta": _time_left(run, timezone.now()),
        "output_model": output_model,
        "series": series,
        "latest": latest,
        "charts": charts,
        "charts_ids": [chart["id"] for chart in charts],
        "metric_groups": [{"id": key, "title": title} for key, title, _ in METRIC_GROUPS],
        "api_url": run_api_url(run.pk),
        "trackers": trackers.tracker_listing(run),
    })


def _page_progress(run: TrainingRun) -> float:
    """The bar's share: of the snapshot's rows while the worker freezes it, else of the training steps."""
    if run.phase == "freezing":
        return run.frozen_rows / run.frozen_rows_expected if run.frozen_rows_expected else 0.0
    return run.progress


@login_required
@require_POST
def run_cancel(request, run_id: int):
    """The no-JavaScript fallback of the run page's cancel button (which posts to the API)."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    try:
        services.run_cancel(run=run)
    except ServiceError:
        pass  # already finished: the run page shows its final status
    return redirect("training-run-detail", run_id=run.pk)


@login_required
@require_POST
def run_resume(request, run_id: int):
    """Resume a failed or cancelled run from its last checkpoint (the run page's button)."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    try:
        services.run_resume(run=run, by=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Queued again: the run resumes from its last checkpoint.")
    return redirect("training-run-detail", run_id=run.pk)


@login_required
@require_POST
def run_retry(request, run_id: int):
    """Start a failed or cancelled run again from scratch, as a new run (the run page's button)."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    try:
        retry = services.run_retry(run=run, created_by=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("training-run-detail", run_id=run.pk)
    messages.success(request, f"Run #{retry.pk} retries run #{run.pk} from scratch on the same snapshot.")
    return redirect("training-run-detail", run_id=retry.pk)


# Model registry ------------------------------------------------------------------------------------------


def format_metric(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def format_metrics(metrics) -> list[tuple[str, str]]:
    if not isinstance(metrics, dict):
        return []
    return [(name, format_metric(value)) for name, value in sorted(metrics.items())]


def model_tree(models: list[ModelVersion]) -> list[dict]:
    """The models in lineage order (each parent, then its children), with each row's depth.

    A model whose parent the user cannot see starts a tree of its own.
    """
    by_id = {model.pk: model for model in models}
    children: dict[int | None, list[ModelVersion]] = {}
    for model in models:
        parent = model.parent_id if model.parent_id in by_id else None
        children.setdefault(parent, []).append(model)
    rows: list[dict] = []
    seen: set[int] = set()

    def walk(parent_id, depth, guides):
        kids = sorted(children.get(parent_id, []), key=lambda m: (m.created_at, m.pk))
        for index, model in enumerate(kids):
            if model.pk in seen:
                continue
            seen.add(model.pk)
            last = index == len(kids) - 1
            rows.append({
                "model": model,
                "depth": depth,
                "last": last,
                # One per ancestor below the root: does that ancestor's branch go on below this row?
                "guides": guides,
                "children": len(children.get(model.pk, [])),
                "metrics": format_metrics(model.metrics),
            })
            walk(model.pk, depth + 1, guides + [not last] if depth else [])

    walk(None, 0, [])
    return rows


@login_required
def model_list(request):
    _require_training(request.user)
    models = list(
        selectors.model_list_for_user(user=request.user).select_related("parent", "produced_by", "project")
    )
    kind = request.GET.get("kind") or ""
    rows = model_tree(models)
    # Is each reward model still right? Its checks in the projects where this user trains.
    checks = staleness.reward_checks_for_models(
        model_ids=[m.pk for m in models if m.kind == ModelVersion.Kind.REWARD],
        project_ids=project_ids_for(user=request.user, action=Action.TRAIN),
    )
    for row in rows:
        row["checks"] = checks.get(row["model"].pk, [])
    if kind in ModelVersion.Kind.values:
        rows = [dict(row, depth=0, guides=[]) for row in rows if row["model"].kind == kind]
    else:
        kind = ""
    return render(request, "training/model_list.html", {
        "nav_section": "models",
        "rows": rows,
        "kinds": ModelVersion.Kind.choices,
        "selected_kind": kind,
        "count": len(models),
        "can_start": may_anywhere(user=request.user, action=Action.TRAIN),
    })



# Compare runs -------------------------------------------------------------------------------------

COMPARE_MAX = 4


@login_required
def run_compare(request):
    """Two to four runs' curves on one page: one chart per metric family, one line per run and metric."""
    _require_training(request.user)
    raw = request.GET.getlist("runs") or (request.GET.get("ids") or "").split(",")
    ids = []
    for value in raw:
        for part in str(value).split(","):
            pk = as_id(part.strip())
            if pk is not None and pk not in ids:
                ids.append(pk)
    if not 2 <= len(ids) <= COMPARE_MAX:
        return render(request, "training/run_compare.html", {
            "nav_section": "runs",
            "error": f"Choose 2 to {COMPARE_MAX} runs to compare (tick them in the runs list).",
        }, status=400)
    ids.sort()  # oldest first, however they were ticked
    runs = [selectors.run_get_for_user(user=request.user, run_id=pk) for pk in ids]  # 404 for any not theirs
    series = {run.pk: selectors.run_metric_series(run=run) for run in runs}
    names = {name for by_name in series.values() for name in by_name}
    charts = metric_charts({name: [] for name in names})
    return render(request, "training/run_compare.html", {
        "nav_section": "runs",
        "runs": runs,
        "charts": charts,
        "series": {
            "runs": [{"id": run.pk, "label": f"#{run.pk} {run.kind}", "series": series[run.pk]} for run in runs],
            "charts": [{"id": chart["id"], "metrics": chart["metrics"]} for chart in charts],
        },
        "configs": _config_rows(runs),
    })


def _config_rows(runs: list[TrainingRun]) -> list[dict]:
    """Each config setting any of the runs has, with each run's value; the ones that differ first."""
    names = sorted({name for run in runs for name in (run.config or {})})
    rows = [{"name": name, "values": [config_value_to_text((run.config or {}).get(name, "")) for run in runs]}
            for name in names]
    for row in rows:
        row["differs"] = len(set(row["values"])) > 1
    return sorted(rows, key=lambda row: (not row["differs"], row["name"]))

@login_required
@require_POST
def reward_checks_start(request, project_id: int):
    """The dashboard's "Check the reward models now": queue the check of each of the project's reward models."""
    project = project_access(user=request.user, project_id=project_id, action=Action.TRAIN).project
    try:
        queued = staleness.reward_checks_schedule_project(project=project)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        if queued:
            messages.success(request, f"Checking {len(queued)} reward model{'s' if len(queued) != 1 else ''}: "
                                      "the agreement appears here when a gpu worker has scored them.")
        else:
            messages.info(request, "Nothing to check now: no reward model, or its check is already under way.")
    return redirect("project-dashboard", project_id=project.pk)
