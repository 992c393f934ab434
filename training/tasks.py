"""Celery tasks of the training app. Thin: they take ids and call training.runner / run_worker / staleness.

Each task's name is pinned (`name=`), so a message queued before a module moved still finds it;
some keep the name of the module they lived in then (training.scoring_tasks.*).

run_execute goes to the `gpu` queue (CELERY_TASK_ROUTES), acks_late with reject_on_worker_lost. A
worker that dies mid-run is noticed by its run's heartbeat, not by the broker (whose visibility
timeout outlasts any run): the recovery sweep queues the run again within about a minute and
another worker resumes it from its last checkpoint (jobs/recovery.py). The sweep goes to the
default queue on purpose: a gpu worker (concurrency 1) is busy for the whole length of a run.
"""

from celery import shared_task
from django.conf import settings

from jobs.outcome import Outcome

from . import run_worker, runner, snapshots, staleness

MAX_ATTEMPTS = 3
TIME_LIMIT = getattr(settings, "TRAINING_TIME_LIMIT_SECONDS", 48 * 3600)
SCORING_TIME_LIMIT = getattr(settings, "ACTIVE_SAMPLING_TIME_LIMIT_SECONDS", 3600)


@shared_task(
    name="training.tasks.run_execute", bind=True, acks_late=True, reject_on_worker_lost=True,
    max_retries=MAX_ATTEMPTS - 1, soft_time_limit=TIME_LIMIT, time_limit=TIME_LIMIT + 300,
)
def run_execute(self, run_id: int) -> str:
    attempt = self.request.retries + 1
    outcome = runner.run_execute(run_id=run_id, attempt=attempt, max_attempts=MAX_ATTEMPTS)
    if outcome == Outcome.RETRY:
        raise self.retry(countdown=1)
    return outcome


@shared_task(name="training.tasks.runs_recover_lost", queue="default", soft_time_limit=60, time_limit=120)
def runs_recover_lost() -> int:
    return run_worker.runs_recover_lost()


@shared_task(name="training.tasks.snapshots_sweep_orphans", queue="default", soft_time_limit=600, time_limit=660)
def snapshots_sweep_orphans() -> int:
    return len(snapshots.snapshots_sweep_orphans())


@shared_task(
    name="training.scoring_tasks.reward_check_run", queue="gpu", acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=SCORING_TIME_LIMIT + 60, time_limit=SCORING_TIME_LIMIT + 300,
)
def reward_check_run(check_id: int) -> str:
    """Is the reward model still right? Score the policy's responses in the newest labels (training/staleness/)."""
    return staleness.reward_check_execute(check_id=check_id)


@shared_task(name="training.scoring_tasks.reward_checks_refresh", queue="default", soft_time_limit=120,
             time_limit=180)
def reward_checks_refresh() -> int:
    """The beat sweep: queue the reward-model checks that are due (staleness.reward_checks_refresh)."""
    return staleness.reward_checks_refresh()


@shared_task(name="training.tasks.model_push", queue="default", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def model_push(push_id: int) -> str:
    """Upload a registered model's directory to the Hugging Face Hub (training/model_push.py); takes the push's id.

    The default queue: an upload needs no GPU, and a gpu worker is busy for a whole run.
    """
    from .model_push import model_push_run

    return model_push_run(push_id=push_id)
