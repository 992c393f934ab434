"""Runs on the `ray` executor, against a real two-node Ray cluster on loopback (tests/training/ray_cluster.py).

The cluster is started once per session; its dashboard serves the Job Submission API the gpu
worker talks to. The gpu workers are real Celery workers on queues of their own, whose RAY_ADDRESS
points at it; the runs are sent there as in test_worker_loss.py. Each node offers one CPU, so a
run with two workers has one rank on each node.
"""

import math
import os
import re
import signal
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from annotation.models import Membership
from jobs import executors_ray
from jobs.executors_ray import RayJobHandle
from jobs.outcome import Outcome
from jobs.ray_launch import NODE_LOST_EXIT, exit_code, rank_envs
from tests.conftest import celery_worker_stop
from tests.factories import ProjectFactory, member
from tests.training.labels import demonstrations_create
from tests.training import ray_cluster as cluster
from tests.training.ray_cluster import ADDRESS, job_status, ray_client, ray_worker_spawn
from tests.training.test_distributed_worker import LOSS_REL_TOLERANCE, losses
from tests.training.test_worker import FAST, LONG, wait_final, wait_for
from training import run_worker, runner, services
from training.models import MetricPoint, ModelVersion, TrainingRun

# The two-node cluster and its gpu worker (tests/training/ray_cluster.py), started once per session. They are
# bound here, not in conftest.py, which bin/smoke-production imports before Django is set up.
ray_cluster, ray_gpu_worker = cluster.ray_cluster, cluster.ray_gpu_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
LOST_AFTER = timedelta(seconds=3)
# The one-process and two-worker runs of the multi-node test (the distributed tests' settings and tolerance).
STEPS = 4
BASE = {"max_steps": STEPS, "logging_steps": 1, "save_steps": 100, "max_length": 64, "learning_rate": 1e-3}


def send_runs_to(monkeypatch, worker) -> None:
    from training.tasks import run_execute

    monkeypatch.setattr(services, "run_enqueue",
                        lambda *, run_id: run_execute.apply_async(args=[run_id], queue=worker.queue))


@pytest.fixture
def project():
    project = ProjectFactory(slug=f"ray-{time.monotonic_ns()}")
    demonstrations_create(project=project, n=8)
    return project


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN)


def start(client_for, admin, project, base, config) -> int:
    response = client_for(admin).post(
        "/api/training-runs/", {"kind": "sft", "project": project.pk, "base_model": base.pk, "config": config},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_two_workers_train_one_per_node_like_one_process(
    ray_gpu_worker, tiny_base_model, client_for, project, admin, settings, monkeypatch
):
    settings.RAY_ADDRESS = ADDRESS
    send_runs_to(monkeypatch, ray_gpu_worker)
    one = start(client_for, admin, project, tiny_base_model, {**BASE, "batch_size": 4, "executor": "local"})
    two = start(client_for, admin, project, tiny_base_model,
                {**BASE, "batch_size": 2, "executor": "ray", "num_workers": 2})
    single, run = wait_final(one, worker=ray_gpu_worker), wait_final(two, worker=ray_gpu_worker)
    for each in (single, run):
        worker_log = ray_gpu_worker.log_path.read_text()[-3000:]
        assert each.status == "succeeded", f"{each.error}\n{each.log_tail}\n{worker_log}"
    assert run.ray_job_id.startswith(f"feedbackloop-run-{two}-") and job_status(run.ray_job_id) == "SUCCEEDED"
    assert f"Ray job {run.ray_job_id}" in run.log_tail and "-m jobs.ray_launch --workers 2" in run.log_tail
    # One rank on each node of the cluster, and rank 0 alone reporting the progress.
    nodes = dict(re.findall(r"\[ray\] rank (\d) on node (\w+)", run.log_tail))
    assert set(nodes) == {"0", "1"} and nodes["0"] != nodes["1"], run.log_tail
    assert "on cpu, world size 2" in run.log_tail and '[rank 1] {"event"' not in run.log_tail
    assert run.step == run.total_steps == STEPS and "[platform] pipeline started at step 0/4" in run.log_tail
    # Two workers take 2 x batch_size rows a step: the same global batch as the one process, so the same losses.
    rows = run.snapshot.row_count
    first_epoch = MetricPoint.objects.get(run=run, name="epoch", step=1).value
    assert first_epoch == pytest.approx(1 / math.ceil(rows / (2 * 2)), rel=1e-3), (rows, first_epoch)
    a, b = losses(single), losses(run)
    assert [step for step, _ in a] == [step for step, _ in b] and len(a) >= STEPS
    for (step, expected), (_, got) in zip(a, b):
        assert got == pytest.approx(expected, rel=LOSS_REL_TOLERANCE), f"step {step}: {a} vs {b}"
    assert a[0][1] != a[-1][1]  # the runs trained: a matching but frozen loss would prove nothing
    assert (Path(settings.STORAGE_ROOT) / f"runs/{two}/model/config.json").exists()
    assert ModelVersion.objects.filter(produced_by=run).exists()


def test_cancel_stops_the_ray_job_and_every_rank(
    ray_gpu_worker, tiny_base_model, client_for, project, admin, settings, monkeypatch
):
    settings.RAY_ADDRESS = ADDRESS
    send_runs_to(monkeypatch, ray_gpu_worker)
    run_id = start(client_for, admin, project, tiny_base_model,
                   {**FAST, "max_steps": 500, "save_steps": 500, "executor": "ray", "num_workers": 2})
    wait_for(lambda: (r := TrainingRun.objects.get(pk=run_id)).status == "running" and r.step >= 1 and r.ray_job_id,
             timeout=180, what="the Ray job to make progress")
    job_id = TrainingRun.objects.get(pk=run_id).ray_job_id
    assert job_status(job_id) == "RUNNING"
    response = client_for(admin).post(f"/api/training-runs/{run_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelling"
    run = wait_final(run_id, timeout=120, worker=ray_gpu_worker)
    assert run.status == "cancelled", run.log_tail
    assert job_status(job_id) == "STOPPED"
    assert run.step < 500
    # The driver's actors are gone, and each rank's pipeline with its actor, on both nodes.
    config = str(Path(settings.STORAGE_ROOT) / f"runs/{run_id}/run.json")
    wait_for(lambda: not [p for p in psutil.process_iter(["cmdline"]) if config in (p.info["cmdline"] or ())],
             timeout=30, what="every rank's pipeline to end")


def test_a_killed_gpu_worker_s_ray_job_is_stopped_and_the_run_resumed_by_another_worker(
    ray_gpu_worker, tiny_base_model, client_for, project, admin, settings, monkeypatch, training_storage_root,
    tmp_path,
):
    settings.RAY_ADDRESS = ADDRESS
    victim = ray_worker_spawn(root=training_storage_root, log=tmp_path / "victim.log",
                              name=f"ray-victim-{os.getpid()}-{time.monotonic_ns()}")
    try:
        send_runs_to(monkeypatch, victim)
        run_id = start(client_for, admin, project, tiny_base_model, {**LONG, "executor": "ray"})
        run_dir = Path(settings.STORAGE_ROOT) / f"runs/{run_id}"
        wait_for(lambda: running_with_checkpoint_on_ray(run_id, run_dir), timeout=240,
                 what="the victim's Ray job to checkpoint")
        first_job = TrainingRun.objects.get(pk=run_id).ray_job_id
        os.killpg(victim.pid, signal.SIGKILL)  # the worker's main process and its pool child, at once
        victim.wait()
        assert job_status(first_job) == "RUNNING"  # a Ray job outlives the worker that submitted it
    finally:
        celery_worker_stop(victim)
    send_runs_to(monkeypatch, ray_gpu_worker)  # the other worker resumes it
    wait_for(lambda: run_worker.runs_recover_lost(lost_after=LOST_AFTER) >= 1
             or TrainingRun.objects.get(pk=run_id).status != "running",
             timeout=60, what="the sweep to queue the lost run again", poll=1.0)
    run = wait_final(run_id, timeout=300, worker=ray_gpu_worker)
    assert run.status == "succeeded", f"{run.error}\n{run.log_tail}"
    assert run.recoveries == 1 and run.ray_job_id != first_job and "resumed from" in run.log_tail
    # The sweep stops the lost worker's job; on a quick machine that job may have run to its end first. Either
    # way it had ended before the second began (below), which is what keeps two copies from writing the run.
    assert job_status(first_job) in ("STOPPED", "SUCCEEDED") and job_status(run.ray_job_id) == "SUCCEEDED"
    jobs = {job.submission_id: job for job in ray_client().list_jobs()
            if job.submission_id.startswith(f"feedbackloop-run-{run_id}-")}
    assert set(jobs) == {first_job, run.ray_job_id}
    # Never two copies: the second job started only after the first had ended.
    assert jobs[first_job].end_time <= jobs[run.ray_job_id].start_time


def running_with_checkpoint_on_ray(run_id: int, run_dir: Path) -> bool:
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status in ("queued", "running"), f"the run ended before the kill: {run.status}\n{run.log_tail}"
    checkpoint = any((p / "trainer_state.json").exists() for p in run_dir.glob("checkpoint-*"))
    return checkpoint and run.status == "running" and bool(run.ray_job_id) and run.step > 0


def test_a_lost_node_fails_the_job_and_the_run_resumes_from_its_checkpoint(
    ray_cluster, ray_gpu_worker, tiny_base_model, client_for, project, admin, settings, monkeypatch
):
    """The second node vanishes mid-run: the job ends NODE_LOST_EXIT, and the retry waits for the node to come back."""
    settings.RAY_ADDRESS = ADDRESS
    send_runs_to(monkeypatch, ray_gpu_worker)
    run_id = start(client_for, admin, project, tiny_base_model,
                   {**FAST, "max_steps": 100, "save_steps": 5, "executor": "ray", "num_workers": 2})
    run_dir = Path(settings.STORAGE_ROOT) / f"runs/{run_id}"
    wait_for(lambda: running_with_checkpoint_on_ray(run_id, run_dir), timeout=240,
             what="the two-worker Ray job to checkpoint")
    first_job = TrainingRun.objects.get(pk=run_id).ray_job_id
    try:
        ray_cluster.kill_second_node()
        wait_for(lambda: job_status(first_job) == "FAILED", timeout=120, what="the job to fail on its lost node")
    finally:
        ray_cluster.start_second_node()  # the node comes back, as a cluster manager would bring it
    run = wait_final(run_id, timeout=300, worker=ray_gpu_worker)
    assert run.status == "succeeded", f"{run.error}\n{run.log_tail}"
    assert ray_client().get_job_info(first_job).driver_exit_code == NODE_LOST_EXIT
    assert "was lost" in ray_client().get_job_logs(first_job)
    assert run.ray_job_id != first_job and job_status(run.ray_job_id) == "SUCCEEDED"
    assert "retrying from the last checkpoint (2/3)" in run.log_tail, run.log_tail
    resumed = re.search(r"resumed from .*checkpoint-(\d+)", run.log_tail)
    assert resumed and int(resumed.group(1)) > 0, run.log_tail
    assert run.step == run.total_steps == 100


def test_ray_without_a_cluster_is_a_400_naming_the_field(client_for, tiny_base_model, project, admin, settings):
    settings.RAY_ADDRESS = ""
    before = TrainingRun.objects.count()
    for config, field in [({**FAST, "executor": "ray"}, "config.executor"),
                          ({**FAST, "num_workers": 2}, "config.num_workers"),
                          ({**FAST, "executor": "cloud"}, "config.executor")]:
        response = client_for(admin).post(
            "/api/training-runs/",
            {"kind": "sft", "project": project.pk, "base_model": tiny_base_model.pk, "config": config}, format="json",
        )
        assert response.status_code == 400, response.content
        assert response.json()["field"] == field, response.json()
    assert "RAY_ADDRESS" in client_for(admin).post(
        "/api/training-runs/", {"kind": "sft", "project": project.pk, "base_model": tiny_base_model.pk,
                                "config": {"executor": "ray"}}, format="json").json()["detail"]
    assert TrainingRun.objects.count() == before


def test_several_workers_sharing_a_gpu_are_a_400_naming_the_field(client_for, tiny_base_model, project, admin,
                                                                   settings):
    settings.RAY_ADDRESS, settings.RAY_GPUS_PER_WORKER = ADDRESS, 0.5
    response = client_for(admin).post(
        "/api/training-runs/", {"kind": "sft", "project": project.pk, "base_model": tiny_base_model.pk,
                                "config": {**FAST, "executor": "ray", "num_workers": 2}}, format="json",
    )
    assert response.status_code == 400 and response.json()["field"] == "config.num_workers", response.content
    assert "cannot share a GPU" in response.json()["detail"]
    assert not TrainingRun.objects.filter(project=project).exists()


def test_an_unreachable_cluster_fails_the_run_with_the_reason(tiny_base_model, project, admin, settings):
    settings.RAY_ADDRESS = "http://127.0.0.1:9"  # nothing listens there
    run = services.run_create(kind="sft", project=project, base_model=tiny_base_model,
                              config={**FAST, "executor": "ray"}, created_by=admin)
    assert runner.run_execute(run_id=run.pk) == Outcome.FAILED
    run.refresh_from_db()
    assert run.status == "failed" and run.ray_job_id == "" and run.pipeline_pid is None
    assert "Could not start the pipeline: the Ray cluster at http://127.0.0.1:9 did not answer" in run.error, run.error


class FakeCluster:
    """The one edge faked here: a cluster answering with a given job status, or not answering at all."""

    def __init__(self, status: str | None, exit_code: int | None = None):
        self.status, self.exit_code = status, exit_code

    def get_job_info(self, job_id):
        if self.status is None:
            raise ConnectionError("connection refused")
        return SimpleNamespace(status=self.status, driver_exit_code=self.exit_code)


@pytest.mark.parametrize(("status", "exit_code", "code"), [
    ("PENDING", None, None), ("RUNNING", None, None), ("SUCCEEDED", 0, 0), ("FAILED", 3, 3),
    ("FAILED", None, -signal.SIGKILL), ("FAILED", NODE_LOST_EXIT, -signal.SIGKILL), ("STOPPED", None, -signal.SIGTERM),
])
def test_a_ray_job_s_status_is_its_exit_code(status, exit_code, code):
    assert RayJobHandle(client=FakeCluster(status, exit_code), job_id="j").poll() == code


def test_a_cluster_that_stays_unreachable_loses_the_job(monkeypatch):
    monkeypatch.setattr(executors_ray, "UNREACHABLE_SECONDS", 0.3)
    handle = RayJobHandle(client=FakeCluster(None), job_id="j")
    assert handle.poll() is None  # a blip is not an end
    time.sleep(0.4)
    assert handle.poll() == -signal.SIGKILL  # a signal we did not send: the run is retried from its checkpoint


def test_each_rank_gets_torch_s_launcher_environment_from_where_it_landed():
    places = [{"node_id": "a", "ip": "10.0.0.1", "gpu_ids": ["3"], "port": 29501},
              {"node_id": "b", "ip": "10.0.0.2", "gpu_ids": ["0"], "port": 40000},
              {"node_id": "a", "ip": "10.0.0.1", "gpu_ids": ["5"], "port": 40001}]
    envs = rank_envs(places, gpus=1)
    assert [(e["RANK"], e["LOCAL_RANK"], e["LOCAL_WORLD_SIZE"], e["GROUP_RANK"]) for e in envs] == [
        ("0", "0", "2", "0"), ("1", "0", "1", "1"), ("2", "1", "2", "0")]
    assert {(e["MASTER_ADDR"], e["MASTER_PORT"], e["WORLD_SIZE"]) for e in envs} == {("10.0.0.1", "29501", "3")}
    # A node's ranks see its GPUs in local-rank order, so cuda:<LOCAL_RANK> is each one's own.
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["3,5", "0", "3,5"]
    assert {e["CUDA_VISIBLE_DEVICES"] for e in rank_envs(places, gpus=0)} == {""}


@pytest.mark.parametrize(("ends", "code"), [
    ({0: 0, 1: 0}, 0), ({0: 1, 1: "lost"}, NODE_LOST_EXIT), ({0: 0, 1: -signal.SIGKILL}, NODE_LOST_EXIT),
    ({0: 0, 1: 3}, 3), ({1: 2, 0: 1}, 1),
])
def test_the_driver_s_exit_code_says_whether_a_node_was_lost(ends, code):
    assert exit_code(ends) == code
