"""A run's dataset snapshot is frozen by its worker, not by the request that creates the run."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Annotation, Membership
from tests.factories import ProjectFactory, comparison_task, member, model_version
from tests.training.labels import demonstrations_create, run_frozen
from training import run_worker, services, snapshots
from training.models import DatasetSnapshot, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory(slug="freezing")


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN, username="ada")


@pytest.fixture
def base():
    return model_version(name="tiny", kind="base", path="models/tiny")


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda args=None, **kw: sent.append(args))
    return sent


def create(project, admin, base, **kwargs):
    return services.run_create(kind=kwargs.pop("kind", "sft"), project=project, base_model=base, config={},
                               created_by=admin, **kwargs)


def queries_to_create(project, admin, base) -> int:
    with CaptureQueriesContext(connection) as queries:
        create(project, admin, base)
    return len(queries)


def test_creating_a_run_reads_no_label_row_by_row(project, admin, base, settings):
    demonstrations_create(project=project, n=2)
    create(project, admin, base)  # the first call fills the process's caches
    few = queries_to_create(project, admin, base)
    bigger = ProjectFactory(slug="bigger")
    Membership.objects.create(project=bigger, user=admin, role=Membership.Role.ADMIN)
    demonstrations_create(project=bigger, n=12)
    many = queries_to_create(bigger, admin, base)
    assert few == many  # the same statements at any size: no export, one EXISTS
    assert DatasetSnapshot.objects.count() == 0
    for made in (project, bigger):
        assert not (settings.STORAGE_ROOT / "snapshots" / str(made.pk)).exists()
    assert set(TrainingRun.objects.values_list("snapshot", flat=True)) == {None}


def test_the_worker_writes_its_progress_while_it_freezes(project, admin, base, monkeypatch):
    demonstrations_create(project=project, n=5)
    run = create(project, admin, base)
    monkeypatch.setattr(snapshots, "PROGRESS_ROWS", 2)
    seen = []
    real = run_worker.run_progress_flush

    def spy(**kwargs):
        seen.append(TrainingRun.objects.values_list("frozen_rows_expected", flat=True).get(pk=run.pk))
        status = real(**kwargs)
        seen.append(TrainingRun.objects.values_list("frozen_rows", "status").get(pk=run.pk))
        return status

    monkeypatch.setattr(run_worker, "run_progress_flush", spy)
    run = run_frozen(run)
    assert seen == [5, (2, "running"), 5, (4, "running")]
    assert run.snapshot.row_count == run.frozen_rows == 5 and run.phase == "training"


def test_a_snapshot_that_turns_out_empty_fails_the_run_with_the_reason(project, admin, base):
    labeler = member(project, Membership.Role.LABELER)
    task = comparison_task(project=project, texts=("One.", "Two."))
    shown = list(task.task_responses.values_list("response_id", flat=True))
    # A tie makes no preference pair, but a cheap check at creation cannot know that.
    Annotation.objects.create(task=task, project=project, labeler=labeler, kind="comparison",
                              ranking=[shown], strength="tie")
    run = run_frozen(create(project, admin, base, kind="reward"))
    assert run.status == "failed" and run.snapshot is None
    assert run.error == ("Could not freeze the dataset: The project has no preference pairs to train on "
                         "(comparisons without ties).")
    assert DatasetSnapshot.objects.count() == 0


def test_cancelling_while_it_freezes_stops_the_freeze_and_leaves_no_file(project, admin, base, monkeypatch, settings):
    demonstrations_create(project=project, n=3)
    run = create(project, admin, base)
    claimed = run_worker.run_claim(run_id=run.pk, worker="test:1")
    services.run_cancel(run=run)
    monkeypatch.setattr(snapshots, "PROGRESS_ROWS", 1)
    assert run_worker.run_snapshot_freeze(run=claimed) == "cancelled"
    run.refresh_from_db()
    assert run.status == "cancelled" and run.snapshot is None and "cancelled while freezing" in run.log_tail
    assert DatasetSnapshot.objects.count() == 0
    assert list((settings.STORAGE_ROOT / "snapshots" / str(project.pk)).iterdir()) == []


def test_a_frozen_snapshot_is_never_frozen_again_and_a_retry_reuses_it(project, admin, base):
    demonstrations_create(project=project, n=3)
    run = run_frozen(create(project, admin, base, data={"exclude_gold": True}))
    run_worker.run_finish(run=run, status="failed", error="boom")
    retry = services.run_retry(run=run, created_by=admin)
    assert retry.snapshot_id == run.snapshot_id and retry.data_filters == {"exclude_gold": True}
    retry = run_frozen(retry)
    assert retry.snapshot_id == run.snapshot_id and DatasetSnapshot.objects.count() == 1


def test_a_retry_of_a_run_that_never_froze_freezes_with_the_same_filters(project, admin, base):
    demonstrations_create(project=project, n=3)
    run = create(project, admin, base, data={"exclude_gold": True})
    services.run_cancel(run=run)
    retry = run_frozen(services.run_retry(run=TrainingRun.objects.get(pk=run.pk), created_by=admin))
    assert retry.snapshot.filters == {"exclude_gold": True} and retry.snapshot.row_count == 3
