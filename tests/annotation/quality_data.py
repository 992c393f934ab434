"""Build labeled projects for the quality tests: hand-written judgment tables and simulated labelers.

A table maps each labeler to one entry per task, in task order. An entry is the signed preference
of a pair (+3 … +1 the first shown is better, 0 tie, -1 … -3 the second), "X" for "all bad" with no
ranking, or None when the labeler skipped the task.
"""

import uuid

from annotation import services
from annotation.models import Annotation, Membership, Task, TaskResponse
from tests.factories import ProjectFactory, comparison_task, member

STRENGTHS = {1: "slightly_better", 2: "better", 3: "much_better"}
CHOICE = {1: "1", -1: "2", 0: "1=2"}


def payload(entry, shown: list[int]) -> dict:
    if entry == "X":
        return {"ranking": [], "all_bad": True}
    if entry == 0:
        return {"ranking": [shown], "strength": "tie"}
    first, second = shown if entry > 0 else shown[::-1]
    return {"ranking": [[first], [second]], "strength": STRENGTHS[abs(entry)]}


def choice_of(entry) -> str | None:
    if entry is None or entry == "X":
        return None
    return CHOICE[(entry > 0) - (entry < 0)]


def table_project(table: dict[str, list], *, time_ms=None):
    """A project whose labelers judge its pair comparisons as the table says, through claim and submit.

    Returns (project, tasks in table order, {username: user}). time_ms(username, index) gives the time spent.
    """
    n_tasks = len(next(iter(table.values())))
    project = ProjectFactory(overlap=len(table))
    member(project, Membership.Role.ADMIN, username=f"admin-{project.slug}")
    tasks = [comparison_task(project=project) for _ in range(n_tasks)]
    users = {name: member(project, username=name) for name in table}
    index = {task.pk: i for i, task in enumerate(tasks)}
    for name, entries in table.items():
        for _ in range(n_tasks):
            task = services.task_claim_next(project=project, labeler=users[name], kind=Task.Kind.COMPARISON)
            i = index[task.pk]
            entry = entries[i]
            ms = time_ms(name, i) if time_ms else 30_000
            if entry is None:
                services.task_skip(task=task, labeler=users[name], reason="Not sure.", time_spent_ms=ms)
                continue
            shown = list(task.task_responses.order_by("position").values_list("response_id", flat=True))
            services.annotation_submit(
                task=task, labeler=users[name], client_id=uuid.uuid4(), data=payload(entry, shown), time_spent_ms=ms
            )
    return project, tasks, users


def bulk_project(judgments: dict[str, list[tuple]], *, n_tasks: int, overlap: int):
    """A project with n_tasks pair comparisons and the given judgments stored directly (fast, for populations).

    judgments[username] is a list of (task index, entry, time_ms). Returns (project, tasks, users).
    """
    project = ProjectFactory(overlap=overlap)
    tasks = [comparison_task(project=project) for _ in range(n_tasks)]
    shown = {
        task.pk: list(TaskResponse.objects.filter(task=task).order_by("position").values_list("response_id", flat=True))
        for task in tasks
    }
    users = {name: member(project, username=name) for name in judgments}
    rows = []
    for name, items in judgments.items():
        for i, entry, ms in items:
            task = tasks[i]
            rows.append(Annotation(
                task=task, project=project, labeler=users[name], kind=Annotation.Kind.COMPARISON,
                time_spent_ms=ms, **payload(entry, shown[task.pk]),
            ))
    Annotation.objects.bulk_create(rows)
    for task in tasks:
        done = Annotation.objects.filter(task=task).count()
        Task.objects.filter(pk=task.pk).update(done=done, status="done" if done >= task.required else "open")
    return project, tasks, users


def project_delete_with_members(project) -> None:
    """Undo a module-scoped fixture (made outside the tests' transactions): the project, its work, its members."""
    from django.contrib.auth import get_user_model

    user_ids = list(project.memberships.values_list("user_id", flat=True))
    project.delete()
    get_user_model().objects.filter(pk__in=user_ids).delete()
