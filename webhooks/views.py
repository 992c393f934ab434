"""The project's webhook pages (admins only): endpoints, their secret shown once, and the delivery log.

Thin views: check access (404 for non-members, 403 for other roles), validate the form, call one
service or selector, render.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.errors import ServiceError
from annotation.models import Project
from annotation.roles import Action, project_access, role_actions

from . import selectors, services
from .forms import EndpointForm

SECRET_SESSION_KEY = "webhooks:new-secret"
DELIVERIES_PER_PAGE = 50


def _project(request, project_id: int) -> Project:
    membership = project_access(user=request.user, project_id=project_id, action=Action.MANAGE)
    request.project_actions = role_actions(membership.role)
    return membership.project


def _page(request, template: str, project: Project, context: dict, status: int = 200):
    can = getattr(request, "project_actions", frozenset())
    return render(request, template, {"project": project, "tab": "webhooks", "can": can, **context}, status=status)


def _secret_once(request, endpoint) -> str | None:
    """The secret stashed by the create or rotate that redirected here, for this one page."""
    stashed = request.session.pop(SECRET_SESSION_KEY, None)
    if stashed and stashed.get("endpoint") == endpoint.pk:
        return endpoint.secret
    return None


def _stash_secret(request, endpoint) -> None:
    request.session[SECRET_SESSION_KEY] = {"endpoint": endpoint.pk}


@login_required
def webhook_list(request, project_id: int):
    project = _project(request, project_id)
    form = EndpointForm(request.POST if request.method == "POST" else None, initial={"active": True})
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(project=project, created_by=request.user, **form.cleaned_data)
        except ServiceError as error:
            form.add_service_error(error)
        else:
            _stash_secret(request, endpoint)
            return redirect("project-webhook", project_id=project.pk, endpoint_id=endpoint.pk)
    context = {
        "form": form,
        "endpoints": selectors.endpoint_list(project=project),
        "deliveries": selectors.delivery_list(project=project).select_related("endpoint")[:20],
    }
    return _page(request, "webhooks/list.html", project, context, status=400 if form.is_bound else 200)


@login_required
def webhook_detail(request, project_id: int, endpoint_id: int):
    project = _project(request, project_id)
    endpoint = selectors.endpoint_get(project=project, endpoint_id=endpoint_id)
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                services.endpoint_update(endpoint=endpoint, **form.cleaned_data)
            except ServiceError as error:
                form.add_service_error(error)
            else:
                messages.success(request, "Endpoint saved.")
                return redirect("project-webhook", project_id=project.pk, endpoint_id=endpoint.pk)
        endpoint.refresh_from_db()
    else:
        form = EndpointForm(initial={"url": endpoint.url, "description": endpoint.description,
                                     "events": endpoint.events, "active": endpoint.active})
    deliveries = selectors.delivery_list(project=project, endpoint_id=endpoint.pk).prefetch_related("attempt_log")
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"endpoint": endpoint, "form": form, "page": page, "secret": _secret_once(request, endpoint),
               "previous_until": selectors.previous_secret_valid_until(endpoint=endpoint),
               "grace_hours": settings.WEBHOOKS_ROTATION_GRACE_HOURS}
    return _page(request, "webhooks/detail.html", project, context, status=400 if form.is_bound else 200)


@login_required
@require_POST
def webhook_rotate(request, project_id: int, endpoint_id: int):
    project = _project(request, project_id)
    endpoint = services.endpoint_secret_rotate(endpoint=selectors.endpoint_get(project=project, endpoint_id=endpoint_id))
    _stash_secret(request, endpoint)
    if endpoint.previous_secret_until:
        messages.success(request, "A new secret signs every delivery from now on; the previous one signs beside it "
                                  "until the time shown under Secret.")
    else:
        messages.success(request, "A new secret signs every delivery from now on.")
    return redirect("project-webhook", project_id=project.pk, endpoint_id=endpoint.pk)


@login_required
@require_POST
def webhook_end_grace(request, project_id: int, endpoint_id: int):
    project = _project(request, project_id)
    endpoint = selectors.endpoint_get(project=project, endpoint_id=endpoint_id)
    try:
        services.endpoint_secret_grace_end(endpoint=endpoint)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The previous secret signs nothing more; only the current one does.")
    return redirect("project-webhook", project_id=project.pk, endpoint_id=endpoint.pk)


@login_required
@require_POST
def webhook_delete(request, project_id: int, endpoint_id: int):
    project = _project(request, project_id)
    services.endpoint_delete(endpoint=selectors.endpoint_get(project=project, endpoint_id=endpoint_id))
    messages.success(request, "Endpoint removed with its delivery log.")
    return redirect("project-webhooks", project_id=project.pk)


@login_required
@require_POST
def webhook_redeliver(request, project_id: int, delivery_id: int):
    project = _project(request, project_id)
    delivery = selectors.delivery_get(project=project, delivery_id=delivery_id)
    try:
        services.delivery_redeliver(delivery=delivery)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Delivery {delivery.pk} queued again.")
    return redirect("project-webhook", project_id=project.pk, endpoint_id=delivery.endpoint_id)
