"""Celery task of active sampling: score a project's open comparisons with its reward model.

Imported at the bottom of training/tasks.py, so the worker's autodiscovery registers it. Thin: it
takes ids and calls training.active_sampling, which claims the scoring with a conditional UPDATE
(a message delivered twice does no harm) and runs the scoring pipeline as a subprocess.
"""

from celery import shared_task
from django.conf import settings

from . import active_sampling

__all__ = ["active_sampling_run", "reward_check_run", "reward_checks_refresh"]

TIME_LIMIT = getattr(settings, "ACTIVE_SAMPLING_TIME_LIMIT_SECONDS", 3600)


@shared_task(
    name="training.scoring_tasks.active_sampling_run", queue="gpu", acks_late=True, reject_on_worker_lost=True, soft_time_limit=TIME_LIMIT + 60,
    time_limit=TIME_LIMIT + 300,
)
def active_sampling_run(project_id: int, reward_model_id: int) -> str:
    return active_sampling.active_sampling_execute(project_id=project_id, reward_model_id=reward_model_id)


@shared_task(
    name="training.scoring_tasks.reward_check_run", queue="gpu", acks_late=True, reject_on_worker_lost=True, soft_time_limit=TIME_LIMIT + 60,
    time_limit=TIME_LIMIT + 300,
)
def reward_check_run(check_id: int) -> str:
    """Is the reward model still right? Score the policy's responses in the newest labels (training/staleness/)."""
    from . import staleness

    return staleness.reward_check_execute(check_id=check_id)


@shared_task(
    name="training.scoring_tasks.reward_checks_refresh", queue="default", soft_time_limit=120, time_limit=180
)
def reward_checks_refresh() -> int:
    """The beat sweep: queue the reward-model checks that are due (staleness.reward_checks_refresh)."""
    from . import staleness

    return staleness.reward_checks_refresh()
