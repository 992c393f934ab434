"""Celery tasks of generation jobs. Thin: they take ids and call training.generation_runner / generation.

generation_execute goes to the `gpu` queue (named here: the route in settings matches only
training.tasks.*). acks_late with reject_on_worker_lost; a job whose worker died is queued again
by the recovery sweep (training/recovery.py), and the new worker samples it again from the start. This module is imported at the
bottom of training/tasks.py, so Celery's autodiscovery registers it.
"""

from celery import shared_task
from django.conf import settings

from . import generation, generation_runner

TIME_LIMIT = getattr(settings, "GENERATION_TIME_LIMIT_SECONDS", 12 * 3600)

__all__ = ["generation_execute", "generation_jobs_recover_lost"]


@shared_task(
    name="training.generation_tasks.generation_execute", queue="gpu", acks_late=True, reject_on_worker_lost=True, soft_time_limit=TIME_LIMIT, time_limit=TIME_LIMIT + 300,
)
def generation_execute(job_id: int) -> str:
    return generation_runner.generation_execute(job_id=job_id)


@shared_task(
    name="training.generation_tasks.generation_jobs_recover_lost", queue="default", soft_time_limit=60, time_limit=120
)
def generation_jobs_recover_lost() -> int:
    return generation.generation_jobs_recover_lost()
