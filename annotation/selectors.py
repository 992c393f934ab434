"""Reads of the annotation app. Everything a user sees goes through a scope check here."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from .models import Annotation, Lease, Membership, Project, Task
from .queries import one_or_none


def project_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user).order_by("name", "id")


def membership_get(*, user: AbstractBaseUser, project_id: int) -> Membership:
    """The user's membership of a project, or 404: another project's existence is not revealed."""
    membership = (
        one_or_none(Membership.objects.select_related("project").filter(user=user, project_id=project_id))
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise Http404("No such project.")
    return membership


def task_get_for_member(*, user: AbstractBaseUser, task_id: int) -> Task:
    # Two primary-key lookups plan and run faster than one join through the memberships.
    task = one_or_none(Task.objects.select_related("project", "prompt").filter(pk=task_id))
    if task is None or not Membership.objects.filter(user=user, project_id=task.project_id).exists():
        raise Http404("No such task.")
    return task


def project_progress(*, project: Project) -> dict:
    """Counts per task kind: tasks, done tasks, annotations stored and required."""
    return project_progress_many(project_ids=[project.pk])[project.pk]


PROGRESS_CACHE_SECONDS = 5


def project_progress_cached(*, project: Project) -> dict:
    """project_progress, at most PROGRESS_CACHE_SECONDS old.

    For the work page, which reloads after every submit: without the cache every label paid an
    aggregate over all the project's tasks. Dashboards and exports use the exact figures.
    """
    return cache.get_or_set(
        f"annotation:progress:{project.pk}", lambda: project_progress(project=project), PROGRESS_CACHE_SECONDS
    )


def project_progress_many(*, project_ids: list[int]) -> dict[int, dict]:
    """project_progress for several projects in one grouped query (the project list)."""
    rows = (
        Task.objects.filter(project_id__in=project_ids)
        .values("project_id", "kind")
        .annotate(
            tasks=Count("id"),
            done_tasks=Count("id", filter=Q(status=Task.Status.DONE)),
            annotations=Sum("done"),
            required=Sum("required"),
        )
        .order_by("project_id", "kind")
    )
    by_project: dict[int, dict] = {pk: {} for pk in project_ids}
    for row in rows:
        required = row["required"] or 0
        annotations = min(row["annotations"] or 0, required) if required else 0
        by_project[row["project_id"]][row["kind"]] = {
            "tasks": row["tasks"],
            "done_tasks": row["done_tasks"],
            "annotations": row["annotations"] or 0,
            "required": required,
            "percent": round(100 * annotations / required, 1) if required else 0.0,
        }
    return {pk: _progress_totals(by_kind) for pk, by_kind in by_project.items()}


def _progress_totals(by_kind: dict) -> dict:
    total_required = sum(k["required"] for k in by_kind.values())
    total_done = sum(min(k["annotations"], k["required"]) for k in by_kind.values())
    return {
        "by_kind": by_kind,
        "tasks": sum(k["tasks"] for k in by_kind.values()),
        "done_tasks": sum(k["done_tasks"] for k in by_kind.values()),
        "percent": round(100 * total_done / total_required, 1) if total_required else 0.0,
    }


def task_payload(*, task: Task, labeler: AbstractBaseUser) -> dict:
    """What a labeler sees of a task: the prompt, the shown responses in display order, the lease."""
    lease = one_or_none(Lease.objects.filter(task=task, labeler=labeler).only("expires_at"))
    lease_expires_at = lease.expires_at.isoformat() if lease else None
    responses = []
    if task.kind == Task.Kind.COMPARISON:
        # Model identity stays hidden: only the id and the text are shown.
        responses = [
            {"id": tr.response_id, "text": tr.response.text}
            for tr in task.task_responses.select_related("response").order_by("position")
        ]
    return {
        "id": task.pk,
        "project": task.project_id,
        "kind": task.kind,
        "messages": task.prompt.messages,
        "responses": responses,
        "lease_expires_at": lease_expires_at,
        "lease_seconds": task.project.lease_seconds,
        "server_time": timezone.now().isoformat(),
    }


def annotation_count_today(*, labeler: AbstractBaseUser, project: Project) -> int:
    """The labeler's annotations in the project since midnight, skips excluded."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        Annotation.objects.filter(project=project, labeler=labeler, created_at__gte=start)
        .exclude(kind=Annotation.Kind.SKIP)
        .count()
    )
