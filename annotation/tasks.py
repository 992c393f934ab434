"""Celery tasks of the annotation app. Thin: they take ids and call annotation.reliability.store.

Both go to the default queue (CELERY_TASK_ROUTES): they need no GPU, and a gpu worker is busy for
the whole length of a training run. A quality run is idempotent, so a message delivered twice only
computes the report twice, and a run that another worker holds is skipped.
"""

from celery import shared_task

from .reliability import store


@shared_task(queue="default", soft_time_limit=store.RUN_SECONDS, time_limit=store.RUN_SECONDS + 60)
def quality_compute_project(project_id: int) -> str:
    return store.quality_run(project_id=project_id)


@shared_task(queue="default", soft_time_limit=120, time_limit=180)
def quality_refresh_all() -> int:
    return store.quality_refresh_all()


@shared_task(name="annotation.tasks.dashboard_refresh", queue="default", soft_time_limit=120, time_limit=180)
def dashboard_refresh(project_id: int) -> bool:
    """Recompute a project's dashboard rollup (annotation/dashboard.py); queued by a page that found it stale."""
    from .dashboard import dashboard_figures_refresh

    return dashboard_figures_refresh(project_id=project_id)


@shared_task(name="annotation.tasks.hub_push_dataset", queue="default", soft_time_limit=3600, time_limit=3660)
def hub_push_dataset(push_id: int) -> str:
    """Write a project's dataset directory and upload it to the Hub (annotation/hub_push.py); takes the push's id."""
    from .dataset_push import dataset_push_run

    return dataset_push_run(push_id=push_id)


@shared_task(name="annotation.tasks.hub_pushes_end_lost", queue="default", soft_time_limit=60, time_limit=90)
def hub_pushes_end_lost() -> int:
    """Beat: end failed the Hub pushes whose worker died mid-upload, or that no worker took before their token
    expired (annotation/hub_push_recovery.py)."""
    from datetime import timedelta

    from .hub_push import TOKEN_SECONDS
    from .hub_push_recovery import hub_pushes_end_lost as end_lost
    from .hub_push_recovery import hub_pushes_end_unstarted as end_unstarted

    return end_lost() + end_unstarted(older_than=timedelta(seconds=TOKEN_SECONDS))
