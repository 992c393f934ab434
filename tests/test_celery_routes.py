"""Training work goes to the gpu queue; the periodic sweeps, label quality runs and webhook deliveries never wait
behind a run there."""

import pytest

from config.celery_app import app


@pytest.mark.parametrize(
    "task, queue",
    [
        ("training.tasks.run_execute", "gpu"),
        ("training.generation_tasks.generation_execute", "gpu"),
        ("training.scoring_tasks.active_sampling_run", "gpu"),
        ("training.scoring_tasks.reward_check_run", "gpu"),
        ("training.scoring_tasks.reward_checks_refresh", "default"),
        ("training.tasks.runs_recover_lost", "default"),
        ("training.tasks.snapshots_sweep_orphans", "default"),
        ("training.generation_tasks.generation_jobs_recover_lost", "default"),
        ("annotation.tasks.quality_compute_project", "default"),
        ("annotation.tasks.quality_refresh_all", "default"),
        ("webhooks.event_fanout", "default"),
        ("webhooks.deliver", "default"),
        ("webhooks.project_completion_check", "default"),
        ("webhooks.deliveries_resume", "default"),
        ("loop.evaluation_completion_check", "default"),
        ("annotation.tasks.hub_push_dataset", "default"),
        ("training.tasks.model_push", "default"),
        ("annotation.tasks.hub_pushes_end_lost", "default"),
    ],
)
def test_route(task, queue):
    app.loader.import_default_modules()
    route = app.amqp.router.route({}, task)
    assert route["queue"].name == queue


def test_every_beat_entry_names_a_registered_task():
    from django.conf import settings

    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry["task"]
