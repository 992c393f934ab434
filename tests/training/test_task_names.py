"""Celery task names are pinned: messages queued before a module moved still find their task."""

import pytest

from config.celery_app import app

PINNED = [
    "training.tasks.run_execute",
    "training.tasks.runs_recover_lost",
    "training.tasks.snapshots_sweep_orphans",
    "training.generation_tasks.generation_execute",
    "training.generation_tasks.generation_jobs_recover_lost",
    "training.scoring_tasks.active_sampling_run",
    "training.scoring_tasks.reward_check_run",
    "training.scoring_tasks.reward_checks_refresh",
    "training.tasks.model_push",
    "loop.evaluation_completion_check",
]


@pytest.mark.parametrize("name", PINNED)
def test_a_queued_message_finds_its_task_by_its_old_name(name):
    app.loader.import_default_modules()
    task = app.tasks[name]
    assert task.name == name


def test_the_training_wing_registers_no_other_task_name():
    app.loader.import_default_modules()
    wing = {name for name in app.tasks if name.split(".")[0] in ("training", "jobs", "loop")}
    assert wing == set(PINNED)
