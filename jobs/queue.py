"""Enqueue a job's Celery task by its pinned name, so no module has to import another's tasks."""

from __future__ import annotations

from celery import current_app


def job_enqueue(*, task_name: str, args: list, **options) -> None:
    """Send `task_name` with `args`: through the registered task when this process has it, else by name.

    The registered task honours its own options and any test double set on it; by name, the
    broker routes it through CELERY_TASK_ROUTES exactly the same way.
    """
    task = current_app.tasks.get(task_name)
    if task is not None:
        task.apply_async(args=args, **options)
    else:
        current_app.send_task(task_name, args=args, **options)
