"""Labeler pages. Server-rendered; the work page's JS (static/js/labeling.js) talks to the API."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from . import qualification, selectors, services, undo
from .errors import NotQualified
from .models import Task
from .reviews.selectors import MY_REVIEWS_ON_WORK_PAGE, prompt_excerpt, reviews_of_labeler
from .roles import role_actions

KIND_LABELS = {
    Task.Kind.DEMONSTRATION: {"noun": "demonstration", "action": "Write demonstrations"},
    Task.Kind.COMPARISON: {"noun": "comparison", "action": "Compare responses"},
}


@login_required
def project_list(request):
    roles = dict(request.user.memberships.values_list("project_id", "role"))
    rows = []
    projects = list(selectors.project_list_for_user(user=request.user))
    progress_by_project = selectors.project_progress_many(project_ids=[p.pk for p in projects])
    waiting_by_project = selectors.waiting_for(labeler=request.user, project_ids=[p.pk for p in projects])
    for project in projects:
        progress = progress_by_project[project.pk]
        can = role_actions(roles.get(project.pk))
        waiting = waiting_by_project.get(project.pk, {}) if "label" in can else {}
        kinds = []
        for kind in Task.Kind.values:
            counts = progress["by_kind"].get(kind)
            if counts is None:
                continue
            kinds.append({
                "kind": kind,
                "label": Task.Kind(kind).label,
                "action": KIND_LABELS[kind]["action"],
                "open": counts["tasks"] - counts["done_tasks"],
                "waiting": waiting.get(kind, 0),
                "waiting_more": waiting.get(kind, 0) >= selectors.WAITING_CAP,
                **counts,
            })
        rows.append({
            "project": project,
            "role": roles.get(project.pk),
            "can": can,
            "progress": progress,
            "kinds": kinds,
        })
    return render(request, "annotation/project_list.html", {
        "rows": rows,
        # The roles are known here already: no query for the nav's training link.
        "nav_can_train": request.user.is_superuser or any("train" in row["can"] for row in rows),
    })


def _my_reviews(user, project) -> list:
    """The latest reviews of the labeler's work, with the reviewer's comment, for the work page."""
    reviews = list(reviews_of_labeler(labeler=user, project=project)[:MY_REVIEWS_ON_WORK_PAGE])
    for review in reviews:
        review.prompt = prompt_excerpt(review.task.prompt.messages)
    return reviews


def _other_queues(user, project, kind: str) -> list[dict]:
    """The project's other kinds of task with work waiting for the labeler, for the empty-queue page."""
    waiting = selectors.waiting_for(labeler=user, project_ids=[project.pk]).get(project.pk, {})
    return [
        {"kind": k, "action": KIND_LABELS[k]["action"], "waiting": n, "more": n >= selectors.WAITING_CAP}
        for k, n in waiting.items() if n and k != kind
    ]


@login_required
@ensure_csrf_cookie
def task_label(request, project_id: int, kind: str):
    """Lease the labeler's next task of this kind (or resume the one held) and render it."""
    if kind not in Task.Kind.values:
        raise Http404("No such task kind.")
    membership = selectors.membership_get(user=request.user, project_id=project_id)
    project = membership.project
    context = {
        "project": project,
        "membership": membership,
        "kind": kind,
        "kind_noun": KIND_LABELS[kind]["noun"],
        "progress": selectors.project_progress(project=project)["by_kind"].get(kind),
        "done_today": selectors.annotation_count_today(labeler=request.user, project=project),
        "my_reviews": _my_reviews(request.user, project),
        "undo": undo.undo_offer(project_id=project.pk, labeler=request.user),
    }
    try:
        task = services.task_claim_next(project=project, labeler=request.user, kind=kind)
    except NotQualified as error:  # held out, or qualifying with nothing to qualify on here
        context.update(message=error.message, qualification=error.extra["qualification"])
        return render(request, "annotation/label_blocked.html", context, status=403)
    if task is not None and qualification.qualification_on(project):
        state = qualification.qualification_state(project=project, labeler=request.user)
        if state["status"] == qualification.Status.QUALIFYING:
            context["qualification"] = state  # a declared test: the page says so
    if task is None:
        context["other_queues"] = _other_queues(request.user, project, kind)
        return render(request, "annotation/label_empty.html", context)
    task.project = project
    payload = selectors.task_payload(task=task, labeler=request.user)
    context.update({"task": task, "payload": payload, "responses": payload["responses"]})
    return render(request, "annotation/label.html", context)
