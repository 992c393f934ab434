"""Reads of the annotation app. Everything a user sees goes through a scope check here."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from .ids import as_id
from .models import Annotation, Membership, ProgressCounter, Project, Task
from .sql import reads


def project_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user).order_by("name", "id")


def membership_get(*, user: AbstractBaseUser, project_id: int) -> Membership:
    """The user's membership of a project, or 404: another project's existence is not revealed."""
    project_id = as_id(project_id)
    membership = None
    if user.is_authenticated and project_id is not None:
        membership = reads.membership_with_project(user_id=user.pk, project_id=project_id)
    if membership is None:
        raise Http404("No such project.")
    return membership


def task_get_for_member(*, user: AbstractBaseUser, task_id: int) -> Task:
    """The task, its project and its prompt, if the user is a member of its project; else 404."""
    task_id = as_id(task_id)
    task = None
    if user.is_authenticated and task_id is not None:
        task = reads.task_for_member(task_id=task_id, user_id=user.pk)
    if task is None:
        raise Http404("No such task.")
    return task


def project_progress(*, project: Project) -> dict:
    """Counts per task kind: tasks, done tasks, annotations stored and required."""
    return project_progress_many(project_ids=[project.pk])[project.pk]


def project_progress_many(*, project_ids: list[int]) -> dict[int, dict]:
    """project_progress for several projects from their rolled-up counters (models.ProgressCounter).

    One grouped query over at most SHARDS rows per project and kind, however many tasks there are:
    no scan, and no cache to go stale, so the work page is right right after a submit. Gold tasks
    are no progress: they never fill up, and every labeler may get each.
    """
    rows = (
        ProgressCounter.objects.filter(project_id__in=project_ids)
        .values("project_id", "kind")
        .annotate(tasks=Sum("tasks"), done_tasks=Sum("done_tasks"), annotations=Sum("annotations"),
                  required=Sum("required"))
        .order_by("project_id", "kind")
    )
    by_project: dict[int, dict] = {pk: {} for pk in project_ids}
    for row in rows:
        if not row["tasks"]:
            continue  # every task of the kind is gone: the kind is not shown
        required = row["required"] or 0
        annotations = min(row["annotations"] or 0, required) if required else 0
        by_project[row["project_id"]][row["kind"]] = {
            "tasks": row["tasks"],
            "done_tasks": row["done_tasks"] or 0,
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


_UNREAD = object()


def task_payload(*, task: Task, labeler: AbstractBaseUser, lease_expires_at=_UNREAD) -> dict:
    """What a labeler sees of a task: the prompt, the shown responses in display order, the lease.

    lease_expires_at: the labeler's lease expiry (None: no lease) when the caller knows it, as the
    claim does; otherwise it is read.
    """
    if lease_expires_at is _UNREAD:
        lease_expires_at = reads.lease_expiry(task_id=task.pk, labeler_id=labeler.pk)
    responses = []
    if task.kind == Task.Kind.COMPARISON:
        # Model identity stays hidden: only the id and the text are shown.
        responses = reads.shown_responses(task_id=task.pk)
    return {
        "id": task.pk,
        "project": task.project_id,
        "kind": task.kind,
        "messages": task.prompt.messages,
        "responses": responses,
        "lease_expires_at": lease_expires_at.isoformat() if lease_expires_at else None,
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


WAITING_CAP = 100


def waiting_for(*, labeler: AbstractBaseUser, project_ids: list[int], cap: int = WAITING_CAP) -> dict[int, dict[str, int]]:
    """{project id: {kind: open tasks this labeler could be given now}}, each counted up to `cap`.

    Room left (done + others' live leases < required), not done by the labeler, none of its
    responses written by them; gold tasks are not counted. A task the labeler holds a lease on
    counts: it is theirs. A count equal to `cap` means "at least".
    """
    if not project_ids:
        return {}
    return reads.waiting_counts(
        labeler_id=labeler.pk, project_ids=list(project_ids), kinds=list(Task.Kind.values), cap=cap, now=timezone.now()
    )
