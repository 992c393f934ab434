"""Resume a failed or cancelled run from its checkpoint, or retry it from scratch: API, page and CLI."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Membership
from tests.factories import ProjectFactory, member, model_version
from tests.training.labels import demonstrations_create
from training import services
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    sent = []
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda args=None, **kw: sent.append(args))
    return sent


@pytest.fixture
def project():
    project = ProjectFactory(slug="again")
    demonstrations_create(project=project, n=2)
    return project


@pytest.fixture
def engineer(project):
    return member(project, Membership.Role.ENGINEER, username="eng")


@pytest.fixture
def failed(project, engineer):
    base = model_version(name="base-again", kind="base", path="models/tiny")
    run = services.run_create(kind="sft", project=project, base_model=base, config={"max_steps": 4},
                              created_by=engineer)
    TrainingRun.objects.filter(pk=run.pk).update(status="failed", error="boom", step=2, total_steps=4,
                                                 worker="host:1", log_tail="attempt 1")
    return TrainingRun.objects.get(pk=run.pk)


def test_resume_queues_the_same_run_again_once(client_for, engineer, failed, enqueued,
                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(engineer).post(f"/api/training-runs/{failed.pk}/resume/")
    assert response.status_code == 200 and response.json()["status"] == "queued"
    failed.refresh_from_db()
    assert (failed.status, failed.error, failed.worker, failed.finished_at) == ("queued", "", "", None)
    assert failed.log_tail.endswith("[platform] resumed by eng, from its last checkpoint")
    assert enqueued == [[failed.pk]]
    again = client_for(engineer).post(f"/api/training-runs/{failed.pk}/resume/")
    assert again.status_code == 409 and again.json()["field"] == "status"
    assert enqueued == [[failed.pk]] and TrainingRun.objects.count() == 1


def test_retry_makes_a_new_run_on_the_same_snapshot(client_for, engineer, failed, enqueued,
                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(engineer).post(f"/api/training-runs/{failed.pk}/retry/")
    assert response.status_code == 201
    retry = TrainingRun.objects.get(pk=response.json()["id"])
    assert retry.pk != failed.pk and retry.status == "queued" and retry.checkpoint_dir == f"runs/{retry.pk}"
    assert (retry.snapshot_id, retry.config, retry.base_model_id) == (failed.snapshot_id, failed.config,
                                                                      failed.base_model_id)
    assert enqueued == [[retry.pk]]
    failed.refresh_from_db()
    assert failed.status == "failed"  # the old run stays as it was


@pytest.mark.parametrize("status", ["queued", "running", "cancelling", "succeeded"])
def test_only_failed_or_cancelled_runs_come_back(client_for, engineer, failed, enqueued, status):
    TrainingRun.objects.filter(pk=failed.pk).update(status=status)
    for action in ("resume", "retry"):
        response = client_for(engineer).post(f"/api/training-runs/{failed.pk}/{action}/")
        assert response.status_code == 409, (action, status)
    assert TrainingRun.objects.get(pk=failed.pk).status == status and TrainingRun.objects.count() == 1


def test_labelers_and_outsiders_cannot(client_for, project, failed, enqueued):
    labeler = member(project)
    for user in (labeler, member(ProjectFactory(), Membership.Role.ADMIN)):
        for action in ("resume", "retry"):
            assert client_for(user).post(f"/api/training-runs/{failed.pk}/{action}/").status_code == 404
    assert TrainingRun.objects.get(pk=failed.pk).status == "failed" and enqueued == []


def test_the_run_page_offers_both_and_they_work(client, engineer, failed, enqueued,
                                                 django_capture_on_commit_callbacks):
    client.force_login(engineer)
    page = client.get(f"/training/runs/{failed.pk}/").content.decode()
    assert f'action="/training/runs/{failed.pk}/resume/"' in page and "Retry from scratch" in page
    assert 'data-role="resume-form" hidden' not in page
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"/training/runs/{failed.pk}/retry/")
    retry = TrainingRun.objects.exclude(pk=failed.pk).get()
    assert done.status_code == 302 and done["Location"] == f"/training/runs/{retry.pk}/"
    assert 'data-role="resume-form" hidden' in client.get(f"/training/runs/{retry.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/training/runs/{failed.pk}/resume/")
    assert TrainingRun.objects.get(pk=failed.pk).status == "queued" and len(enqueued) == 2


def test_the_cli_resumes_and_retries(failed, engineer, enqueued, capsys):
    call_command("train", "--resume", str(failed.pk), "--user", "eng", "--no-follow")
    assert TrainingRun.objects.get(pk=failed.pk).status == "queued"
    with pytest.raises(CommandError, match="can be resumed"):
        call_command("train", "--resume", str(failed.pk), "--no-follow")
    TrainingRun.objects.filter(pk=failed.pk).update(status="cancelled")
    call_command("train", "--retry", str(failed.pk), "--no-follow")
    assert "retries run" in capsys.readouterr().out and TrainingRun.objects.count() == 2
    with pytest.raises(CommandError, match="--kind and --project"):
        call_command("train", "--no-follow")
