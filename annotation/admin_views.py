"""Project admin pages: create, dashboard, import, settings and members, export links.

Thin views: check access, validate the form, call one service or selector, render. Every page
needs a login; a non-member gets 404 and a labeler of the project gets 403.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from . import (
    admin_services, browse, dashboard, dataset_push, exporters, extension_points, gold_stats, hub_push, importers,
    qualification, services,
)
from .errors import ServiceError, size_words
from .export_filters import ExportFilters
from .hf_dataset import DATASET_FORMATS, DEFAULT_LICENSE
from .forms import MemberAddForm, MemberRoleForm, ProjectCreateForm, ProjectSettingsForm, PromptImportForm
from .models import Annotation, Membership, Project
from .roles import Action, can_create_projects, project_access, role_actions

EXPORT_FORMATS = [
    ("sft", "SFT", "One chat per demonstration, ending with the labeler's answer. Loads into TRL's SFTTrainer."),
    (
        "preference",
        "Preference",
        "Chosen and rejected pairs with a margin from each comparison (K-choose-2 pairs per ranking; ties "
        "give none). Loads into TRL's RewardTrainer and DPOTrainer.",
    ),
    ("raw", "Raw", "Every annotation and skip, with pseudonymous labeler ids, timestamps and time spent."),
]


def _project(request, project_id: int, action: Action) -> Project:
    """The project if the user's role allows `action` (404 for non-members, 403 otherwise); its tabs follow the role."""
    membership = project_access(user=request.user, project_id=project_id, action=action)
    request.project_actions = role_actions(membership.role)
    return membership.project


def _page(request, template: str, project: Project | None, tab: str, context: dict, status: int = 200):
    can = getattr(request, "project_actions", frozenset())
    return render(request, template, {"project": project, "tab": tab, "can": can, **context}, status=status)


@login_required
def project_create(request):
    if not can_create_projects(request.user):
        raise PermissionDenied("You may not create projects: ask a superuser for the create-project permission.")
    form = ProjectCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(created_by=request.user, **form.cleaned_data)
        except ServiceError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Project “{project.name}” created. Import prompts to make its tasks.")
            return redirect("project-import", project_id=project.pk)
    status = 400 if form.is_bound else 200
    return _page(request, "annotation/admin/project_create.html", None, "create", {"form": form}, status)


@login_required
def project_dashboard(request, project_id: int):
    project = _project(request, project_id, Action.DASHBOARD)
    data = dict(dashboard.dashboard_get_cached(project=project))
    data["cache_seconds"] = dashboard.DASHBOARD_CACHE_SECONDS
    data["gold"] = gold_stats.gold_summary_cached(project=project)
    data["gold_chart"] = gold_stats.gold_chart(data["gold"])
    for row in data["labelers"]:
        row["mean"] = dashboard.duration_display(row["mean_ms"])
        row["median"] = dashboard.duration_display(row["median_ms"])
    for row in data["time_per_task"]:
        row["mean"] = dashboard.duration_display(row["mean_ms"])
        row["median"] = dashboard.duration_display(row["median_ms"])
    data["quality"] = dashboard.dashboard_quality(project=project)
    # Panels other apps add (the reward model's staleness, for those who train): extension_points.py.
    data.update(extension_points.dashboard_panels(project=project, actions=request.project_actions))
    return _page(request, "annotation/admin/dashboard.html", project, "dashboard", data)


@login_required
@require_POST
def project_quality_recompute(request, project_id: int):
    """The dashboard's "Recompute now" button: queue the label quality run (once, however often it is pressed)."""
    from .reliability.store import quality_recompute_request

    project = _project(request, project_id, Action.DASHBOARD)
    if quality_recompute_request(project_id=project.pk):
        messages.success(request, "Label quality recompute queued: the numbers below update when it is done.")
    else:
        messages.info(request, "A label quality recompute is already queued.")
    return redirect(f"{reverse('project-dashboard', args=[project.pk])}#quality")


@importers.accepts_import_file
@login_required
def project_import(request, project_id: int):
    project = _project(request, project_id, Action.MANAGE)
    posted = request.method == "POST"
    form = PromptImportForm(request.POST if posted else None, request.FILES if posted else None)
    context: dict = {
        "form": form, "result": None, "line_errors": [], "import_error": None,
        "max_size": size_words(settings.IMPORT_MAX_BYTES),
    }
    status = 200
    if posted:
        status = 400
        if form.is_valid():
            upload = form.cleaned_data["file"]
            mode = "update" if form.cleaned_data["update"] else "add"
            try:
                result = importers.prompts_import(
                    project=project, fileobj=upload, filename=upload.name, mode=mode,
                    max_bytes=settings.IMPORT_MAX_BYTES, fmt=form.cleaned_data["format"] or None,
                    source=form.cleaned_data["source"], labels="hide" if form.cleaned_data["hide_labels"] else "use",
                )
            except ServiceError as error:
                context["import_error"] = error.message
                context["line_errors"] = error.details
                context["errors_not_listed"] = error.extra.get("errors_not_listed", 0)
                context["filename"] = upload.name
                status = error.status_code
            else:
                context["result"] = result.as_dict()
                context["filename"] = upload.name
                context["form"] = PromptImportForm()
                status = 200
    return _page(request, "annotation/admin/import.html", project, "import", context, status)


def _settings_page(request, project: Project, *, status: int = 200, **forms):
    context = {
        "settings_form": forms.get("settings_form")
        or ProjectSettingsForm(
            initial={
                "name": project.name,
                "guidelines": project.guidelines,
                "overlap": project.overlap,
                "lease_seconds": project.lease_seconds,
                "reward_model": project.reward_model_id,
                "review_rate": project.review_rate,
                "gold_rate": project.gold_rate,
                "gold_training_mode": project.gold_training_mode,
                "qualification_tasks": project.qualification_tasks,
                "qualification_min_accuracy": project.qualification_min_accuracy,
                "dynamic_overlap": project.dynamic_overlap,
                "max_overlap": project.max_overlap,
                "agreement_threshold": project.agreement_threshold,
            },
            project=project,
        ),
        "member_form": forms.get("member_form") or MemberAddForm(),
        "members_error": forms.get("members_error"),
        "members": dashboard.membership_list(project=project),
        "roles": Membership.Role.choices,
        "gold_tasks": gold_stats.gold_task_counts(project=project),
    }
    statuses = gold_stats.qualification_by_member(project=project)
    for member in context["members"]:
        member["qualification"] = statuses.get(member["user_id"], "")
    return _page(request, "annotation/admin/settings.html", project, "settings", context, status)


@login_required
def project_settings(request, project_id: int):
    project = _project(request, project_id, Action.MANAGE)
    if request.method != "POST":
        return _settings_page(request, project)
    form = ProjectSettingsForm(request.POST, project=project)
    if form.is_valid():
        try:
            services.project_update(project=project, **form.cleaned_data)
        except ServiceError as error:
            form.add_service_error(error)
        else:
            messages.success(request, "Settings saved.")
            return redirect("project-settings", project_id=project.pk)
    project.refresh_from_db()
    return _settings_page(request, project, settings_form=form, status=400)


@login_required
@require_POST
def project_prioritise(request, project_id: int):
    """The "Prioritise by reward-model uncertainty" button (settings and dashboard): queue the scoring.

    Scoring is a GPU job with the project's reward model, so it takes the right to train, not to manage.
    """
    project = _project(request, project_id, Action.TRAIN)
    try:
        extension_points.scoring_schedule(project=project)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Scoring queued: the least certain comparisons move to the front when it is done.")
    target = "project-dashboard" if request.POST.get("next") == "dashboard" else "project-settings"
    return redirect(target, project_id=project.pk)


@login_required
@require_POST
def project_member_add(request, project_id: int):
    project = _project(request, project_id, Action.MANAGE)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership = admin_services.membership_add(project=project, **form.cleaned_data)
        except ServiceError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Added {membership.user.get_username()} as {membership.get_role_display()}.")
            return redirect("project-settings", project_id=project.pk)
    return _settings_page(request, project, member_form=form, status=400)


def _member_user(project: Project, user_id: int):
    user = get_user_model().objects.filter(pk=user_id, memberships__project=project).first()
    if user is None:
        raise Http404("No such member.")
    return user


@login_required
@require_POST
def project_member_role(request, project_id: int, user_id: int):
    project = _project(request, project_id, Action.MANAGE)
    user = _member_user(project, user_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, project, members_error=form.errors["role"][0], status=400)
    try:
        membership = admin_services.membership_role_change(project=project, user=user, **form.cleaned_data)
    except ServiceError as error:
        return _settings_page(request, project, members_error=error.message, status=error.status_code)
    messages.success(request, f"{user.get_username()} is now {membership.get_role_display()}.")
    return redirect("project-settings", project_id=project.pk)


@login_required
@require_POST
def project_member_readmit(request, project_id: int, user_id: int):
    """The members table's "Re-admit" button: a held-out (or qualifying) labeler may do real work."""
    project = _project(request, project_id, Action.MANAGE)
    user = _member_user(project, user_id)
    try:
        qualification.labeler_readmit(project=project, labeler=user, by=request.user)
    except ServiceError as error:
        return _settings_page(request, project, members_error=error.message, status=error.status_code)
    messages.success(request, f"Re-admitted {user.get_username()}: they may now label this project's tasks.")
    return redirect("project-settings", project_id=project.pk)


@login_required
@require_POST
def project_member_remove(request, project_id: int, user_id: int):
    project = _project(request, project_id, Action.MANAGE)
    user = _member_user(project, user_id)
    try:
        admin_services.membership_remove(project=project, user=user)
    except ServiceError as error:
        return _settings_page(request, project, members_error=error.message, status=error.status_code)
    messages.success(request, f"Removed {user.get_username()} from the project. Their annotations stay.")
    return redirect("project-settings", project_id=project.pk)


@login_required
def project_export(request, project_id: int):
    project = _project(request, project_id, Action.EXPORT)
    return _export_page(request, project)


@login_required
@require_POST
@sensitive_post_parameters("token")
def project_hub_push(request, project_id: int):
    """Push the project's dataset directory to the Hugging Face Hub (on a worker); the page lists the pushes."""
    project = _project(request, project_id, Action.EXPORT)
    try:
        push = dataset_push.dataset_push_start(
            project=project, fmt=request.POST.get("format", ""), filters=ExportFilters.from_mapping(request.POST),
            license=request.POST.get("license"), repo_id=request.POST.get("repo_id"),
            token=request.POST.get("token"), private=request.POST.get("private") or "false",
            created_by=request.user,
        )
    except ServiceError as error:
        return _export_page(request, project, push_error=error, status=error.status_code)
    messages.success(request, f"Pushing to {push.repo_id} on the Hugging Face Hub: its status is below.")
    return redirect("project-export", project_id=project.pk)


def _export_page(request, project: Project, *, push_error: ServiceError | None = None, status: int = 200):
    formats = [
        {"key": key, "name": name, "description": text, "url": f"/api/projects/{project.pk}/export/?format={key}"}
        for key, name, text in EXPORT_FORMATS
        if key in exporters.FORMATS
    ]
    progress = dashboard.dashboard_progress(project=project)
    latest = {}
    for record in project.export_records.order_by("-started_at")[:50]:
        latest.setdefault(record.format, record)
    return _page(request, "annotation/admin/export.html", project, "export", {
        "formats": formats, "progress": progress, "last_exports": list(latest.values()),
        "labelers": list(project.memberships.order_by("user__username").values_list("user__username", flat=True)),
        "dataset_formats": DATASET_FORMATS, "default_license": DEFAULT_LICENSE,
        "pushes": list(hub_push.dataset_pushes(project=project)), "push_error": push_error,
        "push_values": request.POST if push_error else {},
    }, status=status)


BROWSE_PAGE_SIZE = 50


@login_required
def project_annotations(request, project_id: int):
    """Every label of the project, filterable by labeler, kind, review, date and disagreement, with search."""
    project = _project(request, project_id, Action.DASHBOARD)
    error, filters = "", {}
    try:
        filters = browse.clean_browse_filters(request.GET)
    except ServiceError as exc:
        error = exc.message
    paginator = Paginator(browse.project_annotations(project=project, **filters), BROWSE_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return _page(request, "annotation/admin/annotations.html", project, "annotations", {
        "rows": browse.browse_rows(list(page.object_list)),
        "page": page,
        "filters": filters,
        "query": query.urlencode(),
        "kinds": list(Annotation.Kind.values),
        "reviews": browse.REVIEW_FILTERS,
        "labelers": list(project.memberships.order_by("user__username").values_list("user__username", flat=True)),
        "error": error,
    }, status=400 if error else 200)


@login_required
def project_task(request, project_id: int, task_id: int):
    """One task with every label given on it, beside the responses it judged."""
    project = _project(request, project_id, Action.DASHBOARD)
    return _page(request, "annotation/admin/task.html", project, "annotations",
                 browse.task_with_labels(project=project, task_id=task_id))
