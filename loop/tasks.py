"""Celery tasks of the loop: generation jobs and active sampling. Thin: they take ids and call the services.

Their names are pinned to the modules they lived in before the loop had a wing of its own
(training.generation_tasks.*, training.scoring_tasks.*), so messages queued then still run, and
CELERY_TASK_ROUTES keeps routing them. The gpu tasks are acks_late with reject_on_worker_lost; a
generation job whose worker died is queued again by the recovery sweep (jobs/recovery.py) and
sampled again from the start. Active sampling claims its scoring with a conditional UPDATE, so a
message delivered twice does no harm.
"""

from celery import shared_task
from django.conf import settings

from . import active_sampling, evaluation_completed, generation, generation_runner

GENERATION_TIME_LIMIT = getattr(settings, "GENERATION_TIME_LIMIT_SECONDS", 12 * 3600)
SCORING_TIME_LIMIT = getattr(settings, "ACTIVE_SAMPLING_TIME_LIMIT_SECONDS", 3600)


@shared_task(
    name="training.generation_tasks.generation_execute", queue="gpu", acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=GENERATION_TIME_LIMIT, time_limit=GENERATION_TIME_LIMIT + 300,
)
def generation_execute(job_id: int) -> str:
    return generation_runner.generation_execute(job_id=job_id)


@shared_task(name="training.generation_tasks.generation_jobs_recover_lost", queue="default", soft_time_limit=60,
             time_limit=120)
def generation_jobs_recover_lost() -> int:
    return generation.generation_jobs_recover_lost()


@shared_task(
    name="training.scoring_tasks.active_sampling_run", queue="gpu", acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=SCORING_TIME_LIMIT + 60, time_limit=SCORING_TIME_LIMIT + 300,
)
def active_sampling_run(project_id: int, reward_model_id: int) -> str:
    return active_sampling.active_sampling_execute(project_id=project_id, reward_model_id=reward_model_id)


@shared_task(name="loop.evaluation_completion_check", queue="default", soft_time_limit=60, time_limit=120)
def evaluation_completion_check(evaluation_id: int) -> bool:
    """A task of the evaluation was completed: emit evaluation.completed if it was the last one."""
    return evaluation_completed.evaluation_completed_emit(evaluation_id=evaluation_id)
