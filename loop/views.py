"""Pages for generation jobs, A/B evaluations and the leaderboard.

Thin views: reads come from loop.generation / loop.evaluation, writes go through their
services, and the live parts poll the API (/api/generation-jobs/{id}/, /api/evaluations/{id}/).
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from annotation.errors import ServiceError
from annotation.models import Project
from annotation.roles import Action, project_access, projects_for, require_anywhere

from training import selectors
from training.forms import ModelSelect
from training.models import GenerationJob, ModelVersion

from . import evaluation as evaluations
from . import generation

LIST_LIMIT = 100
# An evaluation's status drawn with the run-status badge colours of training.css.
STATUS_CLASS = {"generating": "queued", "labeling": "running", "complete": "succeeded"}
STATUS_LABEL = {"complete": "Complete"}


def _train_projects(user):
    return projects_for(user=user, action=Action.TRAIN)


def _sampling_models(user):
    return selectors.model_list_for_user(user=user).filter(kind__in=generation.SAMPLING_KINDS).order_by("name")


def _model_label(model: ModelVersion) -> str:
    return f"{model.name} ({model.kind})"


class _ModelChoice(forms.ModelChoiceField):
    widget = ModelSelect

    def label_from_instance(self, obj):
        return _model_label(obj)


class _ServiceErrorForm(forms.Form):
    def add_service_error(self, error: ServiceError) -> None:
        field = error.field if error.field in self.fields else None
        if field is None and error.field == "model_version" and "model" in self.fields:
            field = "model"
        self.add_error(field, error.message)


class GenerationForm(_ServiceErrorForm):
    project = forms.ModelChoiceField(queryset=Project.objects.none(), empty_label=None)
    model = _ModelChoice(queryset=ModelVersion.objects.none(), empty_label=None,
                         help_text="A base, SFT or policy model version.")
    k = forms.IntegerField(initial=4, help_text="Responses per prompt, 2 to 8. Exact duplicates are dropped.")
    prompt_count = forms.IntegerField(initial=20, help_text="Prompts without a comparison task come first.")
    temperature = forms.FloatField(initial=1.0, help_text="Above 0; higher gives more varied responses.")
    top_p = forms.FloatField(initial=0.95, help_text="Nucleus sampling, in (0, 1].")
    max_new_tokens = forms.IntegerField(initial=48)
    seed = forms.IntegerField(initial=0, help_text="Same seed, same samples and display orders.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = _train_projects(user)
        self.fields["model"].queryset = _sampling_models(user)


class EvaluationForm(_ServiceErrorForm):
    project = forms.ModelChoiceField(queryset=Project.objects.none(), empty_label=None)
    model_a = _ModelChoice(queryset=ModelVersion.objects.none(), empty_label=None, label="Model A",
                           help_text="Usually the current model, e.g. the SFT model.")
    model_b = _ModelChoice(queryset=ModelVersion.objects.none(), empty_label=None, label="Model B",
                           help_text="The challenger, e.g. the RLHF or DPO policy.")
    prompt_count = forms.IntegerField(initial=50, help_text="Held-out prompts: ones no task has used come first.")
    temperature = forms.FloatField(initial=0.7)
    max_new_tokens = forms.IntegerField(initial=48)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = _train_projects(user)
        self.fields["model_a"].queryset = _sampling_models(user)
        self.fields["model_b"].queryset = _sampling_models(user)


def _initial(request, names) -> dict:
    return {name: request.GET[name] for name in names if request.GET.get(name)}


def _check_posted_project(request):
    """A project named in the request must be one the user trains in: 404 for non-members, 403 for labelers."""
    project_id = request.POST.get("project") if request.method == "POST" else request.GET.get("project")
    if project_id not in (None, ""):
        project_access(user=request.user, project_id=project_id, action=Action.TRAIN)


def _require_training(user) -> None:
    if not user.is_superuser:
        require_anywhere(user=user, action=Action.TRAIN)


# Generation jobs ----------------------------------------------------------------------------------------


@login_required
def generation_list(request):
    _require_training(request.user)
    # Evaluations' sampling jobs too: they use the same gpu workers, and a stuck one must be findable.
    jobs = generation.generation_job_list_for_user(user=request.user)[:LIST_LIMIT]
    rows = [{"job": job, "percent": round(100 * job.progress, 1), "active": job.status in GenerationJob.ACTIVE}
            for job in jobs]
    return render(request, "training/generation_list.html", {
        "nav_section": "generation", "rows": rows, "can_start": _train_projects(request.user).exists(),
    })


@login_required
def generation_new(request):
    _check_posted_project(request)
    if not _train_projects(request.user).exists():
        return render(request, "training/generation_new.html", {"nav_section": "generation", "no_projects": True},
                      status=403)
    data = request.POST if request.method == "POST" else None
    form = GenerationForm(data, user=request.user, initial=_initial(request, ["project", "model"]))
    status = 200
    if data is not None:
        if form.is_valid():
            values = form.cleaned_data
            try:
                job = generation.generation_create(
                    project=values["project"], model_version=values["model"], k=values["k"],
                    temperature=values["temperature"], top_p=values["top_p"], max_new_tokens=values["max_new_tokens"],
                    seed=values["seed"], prompt_count=values["prompt_count"], created_by=request.user,
                )
            except ServiceError as error:
                form.add_service_error(error)
            else:
                return redirect("training-generation-detail", job_id=job.pk)
        status = 400
    return render(request, "training/generation_new.html", {"nav_section": "generation", "form": form}, status=status)


@login_required
def generation_detail(request, job_id: int):
    job = generation.generation_job_get_for_user(user=request.user, job_id=job_id)
    return render(request, "training/generation_detail.html", {
        "nav_section": "generation",
        "job": job,
        "active": job.status in GenerationJob.ACTIVE,
        "percent": round(100 * job.progress, 1),
        "api_url": f"/api/generation-jobs/{job.pk}/",
    })


# Evaluations ----------------------------------------------------------------------------------------------


@login_required
def evaluation_list(request):
    _require_training(request.user)
    rows = []
    for item in evaluations.evaluation_list_for_user(user=request.user)[:LIST_LIMIT]:
        rows.append({"evaluation": item, "results": evaluations.evaluation_results(evaluation=item)})
    return render(request, "training/evaluation_list.html", {
        "nav_section": "evaluations", "rows": rows, "can_start": _train_projects(request.user).exists(),
    })


def _evaluation_pair(user) -> dict:
    """Two different models to start from: the newest (the challenger, B) and its parent (A), or the one before it."""
    models = list(_sampling_models(user).order_by("-created_at", "-id")[:50])
    if len(models) < 2:
        return {}
    newest = models[0]
    baseline = next((m for m in models if m.pk == newest.parent_id), models[1])
    return {"model_a": baseline.pk, "model_b": newest.pk}


@login_required
def evaluation_new(request):
    _check_posted_project(request)
    if not _train_projects(request.user).exists():
        return render(request, "training/evaluation_new.html", {"nav_section": "evaluations", "no_projects": True},
                      status=403)
    data = request.POST if request.method == "POST" else None
    initial = {**_evaluation_pair(request.user), **_initial(request, ["project", "model_a", "model_b"])}
    form = EvaluationForm(data, user=request.user, initial=initial)
    status = 200
    if data is not None:
        if form.is_valid():
            values = form.cleaned_data
            try:
                item = evaluations.evaluation_create(
                    project=values["project"], model_a=values["model_a"], model_b=values["model_b"],
                    prompt_count=values["prompt_count"], temperature=values["temperature"],
                    max_new_tokens=values["max_new_tokens"], created_by=request.user,
                )
            except ServiceError as error:
                form.add_service_error(error)
            else:
                return redirect("training-evaluation-detail", evaluation_id=item.pk)
        status = 400
    return render(request, "training/evaluation_new.html", {"nav_section": "evaluations", "form": form}, status=status)


def _percent(value) -> float | None:
    return None if value is None else round(100 * value, 1)


def _any_rated(board: list[dict]) -> bool:
    """Whether the leaderboard has a rating to chart (without one, the page draws no empty chart)."""
    return any(row["rating"] is not None for row in board)


@login_required
def evaluation_detail(request, evaluation_id: int):
    item = evaluations.evaluation_get_for_user(user=request.user, evaluation_id=evaluation_id)
    results = evaluations.evaluation_results(evaluation=item)
    job = GenerationJob.objects.filter(evaluation=item).order_by("-id").first()
    board = evaluations.leaderboard(project=item.project)
    return render(request, "training/evaluation_detail.html", {
        "nav_section": "evaluations",
        "evaluation": item,
        "results": results,
        # Stated for model B, the challenger: how often it beats model A (ties count half).
        "win_percent": _percent(results["challenger_win_rate"]),
        "low_percent": _percent(results["challenger_ci_low"]),
        "high_percent": _percent(results["challenger_ci_high"]),
        "band_width": round(100 * (results["challenger_ci_high"] - results["challenger_ci_low"]), 1)
        if results["n"] else 0.0,
        "status_class": STATUS_CLASS.get(results["status"], results["status"]),
        "status_label": STATUS_LABEL.get(results["status"], item.get_status_display()),
        "job": job,
        "job_percent": round(100 * job.progress, 1) if job else 0,
        "job_active": bool(job and job.status in GenerationJob.ACTIVE),
        "board": board,
        "board_rated": _any_rated(board),
        "api_url": f"/api/evaluations/{item.pk}/",
        "leaderboard_api_url": f"/api/projects/{item.project_id}/leaderboard/",
        "label_url": f"/projects/{item.project_id}/label/comparison/",
    })


@login_required
def leaderboard(request, project_id: int):
    project = project_access(user=request.user, project_id=project_id, action=Action.TRAIN).project
    board = evaluations.leaderboard(project=project)
    return render(request, "training/leaderboard.html", {
        "nav_section": "evaluations",
        "project": project,
        "board": board,
        "board_rated": _any_rated(board),
        "evaluations": evaluations.evaluation_list_for_user(user=request.user).filter(project=project)[:20],
    })
