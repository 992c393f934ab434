"""Reads of the annotation app. Everything a user sees goes through a scope check here."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from .ids import as_id
from .models import Annotation, Lease, Membership, ProgressCounter, Project, Prompt, Task
from .queries import column_value, columns, db_datetime, execute, fetch_one, load


def project_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user).order_by("name", "id")


# The hot path's reads, as SQL (see queries.py): every labeler request checks a membership, and
# every submit loads its task.
_MEMBERSHIP = f"""
SELECT {columns(Membership, "m")}, {columns(Project, "p")}
FROM annotation_membership m JOIN annotation_project p ON p.id = m.project_id
WHERE m.user_id = %s AND m.project_id = %s
"""
# Two lookups on unique keys; the membership test names the task's own project.
_TASK_FOR_MEMBER = f"""
SELECT {columns(Task, "t")}, {columns(Project, "p")}, {columns(Prompt, "pr")}
FROM annotation_task t JOIN annotation_project p ON p.id = t.project_id JOIN annotation_prompt pr ON pr.id = t.prompt_id
WHERE t.id = %s AND EXISTS (SELECT 1 FROM annotation_membership m WHERE m.project_id = t.project_id AND m.user_id = %s)
"""
_LEASE_EXPIRY = "SELECT expires_at FROM annotation_lease WHERE task_id = %s AND labeler_id = %s"
# A comparison's responses in display order (every comparison's payload; gold tasks made these
# common enough on the hot path to write them as SQL, as the rest of it).
_SHOWN = """
SELECT r.id, r.text FROM annotation_taskresponse tr JOIN annotation_response r ON r.id = tr.response_id
WHERE tr.task_id = %s ORDER BY tr.position
"""


def membership_get(*, user: AbstractBaseUser, project_id: int) -> Membership:
    """The user's membership of a project, or 404: another project's existence is not revealed."""
    project_id = as_id(project_id)
    row = None
    if user.is_authenticated and project_id is not None:
        row = fetch_one(_MEMBERSHIP, [user.pk, project_id], name="membership_get", types=("integer", "bigint"))
    if row is None:
        raise Http404("No such project.")
    membership, after = load(Membership, row)
    membership.project, _ = load(Project, row, after)
    return membership


def task_get_for_member(*, user: AbstractBaseUser, task_id: int) -> Task:
    """The task, its project and its prompt, if the user is a member of its project; else 404."""
    task_id = as_id(task_id)
    row = None
    if user.is_authenticated and task_id is not None:
        row = fetch_one(_TASK_FOR_MEMBER, [task_id, user.pk], name="task_get_for_member", types=("bigint", "integer"))
    if row is None:
        raise Http404("No such task.")
    task, after = load(Task, row)
    task.project, after = load(Project, row, after)
    task.prompt, _ = load(Prompt, row, after)
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
        row = fetch_one(_LEASE_EXPIRY, [task.pk, labeler.pk], name="task_payload_lease", types=("bigint", "integer"))
        lease_expires_at = column_value(Lease, "expires_at", row[0]) if row else None
    responses = []
    if task.kind == Task.Kind.COMPARISON:
        # Model identity stays hidden: only the id and the text are shown.
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            execute(cursor, _SHOWN, [task.pk], name="task_payload_shown", types=("bigint",))
            responses = [{"id": pk, "text": text} for pk, text in cursor.fetchall()]
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

# Per project, the open tasks of one kind this labeler could be given now, counted up to a cap: the
# claim's own rule (claiming._CANDIDATE) with LIMIT, so a count walks at most `cap` rows of the
# claim's index however big the project is. One statement for any number of projects.
_WAITING_KIND = """
(SELECT COUNT(*) FROM (
  SELECT 1 FROM annotation_task t
  WHERE t.project_id = p.id AND t.kind = '{kind}' AND t.status = 'open' AND NOT t.is_gold
    AND t.done + (SELECT COUNT(*) FROM annotation_lease l
                  WHERE l.task_id = t.id AND l.expires_at > %s AND l.labeler_id <> %s) < t.required
    AND NOT EXISTS (SELECT 1 FROM annotation_annotation a WHERE a.task_id = t.id AND a.labeler_id = %s)
    AND NOT EXISTS (
      SELECT 1 FROM annotation_taskresponse tr JOIN annotation_response r ON r.id = tr.response_id
      WHERE tr.task_id = t.id AND r.author_id = %s
    )
  ORDER BY t.priority DESC, t.id ASC LIMIT %s
) w)
"""


def waiting_for(*, labeler: AbstractBaseUser, project_ids: list[int], cap: int = WAITING_CAP) -> dict[int, dict[str, int]]:
    """{project id: {kind: open tasks this labeler could be given now}}, each counted up to `cap`.

    Room left (done + others' live leases < required), not done by the labeler, none of its
    responses written by them; gold tasks are not counted. A task the labeler holds a lease on
    counts: it is theirs. A count equal to `cap` means "at least".
    """
    if not project_ids:
        return {}
    kinds = list(Task.Kind.values)
    now = db_datetime(timezone.now())
    columns_sql = ", ".join(_WAITING_KIND.format(kind=kind) for kind in kinds)
    placeholders = ", ".join(["%s"] * len(project_ids))
    sql = f"SELECT p.id, {columns_sql} FROM annotation_project p WHERE p.id IN ({placeholders})"
    params = [now, labeler.pk, labeler.pk, labeler.pk, cap] * len(kinds) + list(project_ids)
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: dict(zip(kinds, row[1:])) for row in cursor.fetchall()}
