"""A Hub push whose worker dies mid-upload ends failed with the reason, never "running" for ever.

The real test kills a real Celery worker with SIGKILL while it uploads. That worker's huggingface_hub
is replaced at its edge, HfApi's methods, by a sitecustomize module on its PYTHONPATH: create_repo
answers, and upload_folder marks that it began and then hangs as a long upload would. The network
is never used.
"""

import os
import signal
import socket
import time
from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from annotation import dataset_push, hub_push, hub_push_recovery
from annotation.export_filters import ExportFilters
from annotation.hub_push_recovery import hub_pushes_end_lost
from annotation.models import HubPush, Membership
from annotation.worker_processes import pid_alive
from tests.annotation.test_hf_dataset import labelled  # noqa: F401 (a fixture)
from tests.conftest import api_client_for, celery_worker_spawn, celery_worker_stop, worker_env
from tests.factories import ProjectFactory, member

TOKEN = "hf_secretTokenValue123"

HANGING_HUB = '''
import os
import pathlib
import time

import huggingface_hub


def create_repo(self, repo_id, **kwargs):
    return "https://huggingface.co/datasets/" + repo_id


def upload_folder(self, *, repo_id, folder_path, **kwargs):
    pathlib.Path(os.environ["FAKE_HUB_DIR"], f"uploading-{os.getpid()}").write_text(repo_id)
    time.sleep(300)


huggingface_hub.HfApi.create_repo = create_repo
huggingface_hub.HfApi.upload_folder = upload_folder
'''


@pytest.fixture
def project(db):
    return ProjectFactory(name="Helpful answers", slug="helpful")


@pytest.fixture
def engineer(project):
    return member(project, role=Membership.Role.ENGINEER, username="erin")


def wait_for(condition, *, timeout: float, what: str, log=None):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout} s\n{log.read_text()[-4000:] if log else ''}")
        time.sleep(0.1)
    return value


@pytest.mark.django_db(transaction=True)
def test_a_push_whose_worker_is_killed_mid_upload_ends_failed_while_a_live_one_beats(
    project, engineer, labelled, tmp_path, training_storage_root, monkeypatch  # noqa: F811
):
    site, marks = tmp_path / "site", tmp_path / "hub"
    site.mkdir()
    marks.mkdir()
    (site / "sitecustomize.py").write_text(HANGING_HUB)
    env = worker_env(training_storage_root)
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")])), FAKE_HUB_DIR=str(marks))
    queue = f"hub-victim-{os.getpid()}-{time.monotonic_ns()}"  # its own queue: no other worker takes the push
    victim = celery_worker_spawn(env=env, log_path=tmp_path / "victim.log", queues=queue, name=queue)
    try:
        monkeypatch.setattr(hub_push, "_enqueue",
                            lambda task_name, push_id: current_app.send_task(task_name, args=[push_id], queue=queue))
        api = api_client_for(engineer)
        started = api.post(f"/api/projects/{project.pk}/hub-pushes/",
                           {"repo_id": "my-org/helpful-prefs", "token": TOKEN, "format": "preference"}, format="json")
        assert started.status_code == 202, started.content
        push_id = started.json()["id"]
        (mark,) = wait_for(lambda: list(marks.glob("uploading-*")), timeout=60, what="the upload to begin",
                           log=victim.log_path)
        uploader = int(mark.name.split("-")[1])
        push = HubPush.objects.get(pk=push_id)
        assert push.status == "running" and push.worker.endswith(f":{uploader}") and push.heartbeat_at is not None

        assert hub_pushes_end_lost(lost_after=timedelta(0)) == 0  # its worker lives: a slow upload is left alone
        os.killpg(victim.pid, signal.SIGKILL)  # the worker's main process and the one uploading, at once
        victim.wait()
        wait_for(lambda: not pid_alive(uploader), timeout=15, what="the uploading process to die")
        assert HubPush.objects.get(pk=push_id).status == "running"  # nobody else can tell the push it is over

        assert hub_pushes_end_lost() == 0  # the default sweep waits for LOST_AFTER of silence, not longer
        assert hub_pushes_end_lost(lost_after=timedelta(0)) == 1
        body = api.get(f"/api/hub-pushes/{push_id}/").json()
        assert body["status"] == "failed" and body["finished_at"] is not None and body["url"] == ""
        assert body["error"].startswith("The worker stopped during the upload (worker ")
        assert body["error"].endswith("; push again.") and TOKEN not in body["error"]
        assert hub_pushes_end_lost(lost_after=timedelta(0)) == 0  # ended once
    finally:
        celery_worker_stop(victim)
    # (In the same test, to share its database flush: a live upload's heartbeat moves.)
    live_upload_beats(project=project, engineer=engineer, monkeypatch=monkeypatch)


def live_upload_beats(*, project, engineer, monkeypatch):
    """An upload in this process, slowed down, with a fast heartbeat: the heartbeat moves while it runs."""
    import huggingface_hub

    beats = []

    class SlowHub:
        def __init__(self, token=None, **kwargs):
            pass

        def create_repo(self, repo_id, **kwargs):
            return f"https://huggingface.co/datasets/{repo_id}"

        def upload_folder(self, **kwargs):
            for _ in range(8):
                time.sleep(0.1)
                beats.append(HubPush.objects.values_list("heartbeat_at", flat=True).get(pk=push.pk))

    monkeypatch.setattr(huggingface_hub, "HfApi", SlowHub)
    monkeypatch.setattr(hub_push_recovery, "HEARTBEAT_SECONDS", 0.05)
    push = dataset_push.dataset_push_start(project=project, fmt="sft", filters=ExportFilters(), license=None,
                                           repo_id="me/data", token=TOKEN, private=True, created_by=engineer)
    assert dataset_push.dataset_push_run(push_id=push.pk) == "succeeded"
    assert len(set(beats)) >= 3 and beats == sorted(beats)
    push.refresh_from_db()
    assert push.worker.endswith(f":{os.getpid()}") and push.error == ""


def test_the_sweep_judges_other_hosts_by_the_heartbeat_and_this_host_by_the_pid(project):
    now = timezone.now()
    old, fresh = now - timedelta(seconds=31), now - timedelta(seconds=5)

    def running(worker, heartbeat_at):
        return HubPush.objects.create(kind="dataset", project=project, repo_id="me/data", status="running",
                                      worker=worker, heartbeat_at=heartbeat_at)

    silent_elsewhere = running("elsewhere:4242", old)
    beating_elsewhere = running("elsewhere:4242", fresh)
    dead_here = running(f"{socket.gethostname()}:999999", old)
    live_here = running(f"{socket.gethostname()}:{os.getppid()}", old)
    assert hub_pushes_end_lost(now=now) == 2
    status = dict(HubPush.objects.values_list("pk", "status"))
    assert status == {silent_elsewhere.pk: "failed", beating_elsewhere.pk: "running", dead_here.pk: "failed",
                      live_here.pk: "running"}

    # The worker's own end, arriving after the sweep's, changes nothing.
    assert hub_push._finish(silent_elsewhere, url="https://huggingface.co/datasets/me/data") == "failed"
    assert HubPush.objects.get(pk=silent_elsewhere.pk).url == ""


def test_a_push_still_queued_when_its_token_expired_ends_failed(project):
    from annotation.tasks import hub_pushes_end_lost as sweep

    queued = HubPush.objects.create(kind="dataset", project=project, repo_id="me/data")
    recent = HubPush.objects.create(kind="dataset", project=project, repo_id="me/data")
    HubPush.objects.filter(pk=queued.pk).update(created_at=timezone.now() - timedelta(seconds=hub_push.TOKEN_SECONDS + 1))
    assert sweep() == 1
    queued.refresh_from_db()
    assert queued.status == "failed" and queued.finished_at is not None
    assert queued.error == ("No worker began the upload within 1 h, and the access token is kept only that long "
                            "(it is never stored); push again.")
    assert HubPush.objects.get(pk=recent.pk).status == "queued"
    assert dataset_push.dataset_push_run(push_id=queued.pk) == "skipped"  # its message, if it ever comes, does nothing
