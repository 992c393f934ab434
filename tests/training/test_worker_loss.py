"""A gpu worker that dies whole (kill -9 of its process group) loses no job: another worker resumes it.

The "victim" is a real Celery worker on a queue of its own, so that it and only it takes the job;
the session's worker stands by on the gpu queue. After the kill, nothing acknowledges the message
and the broker would return it only after its visibility timeout (days). The recovery sweep (beat
runs it every 20 s; here the test calls it, with a short loss threshold) sees the stale heartbeat
and the dead pid, queues the job again, and the standing worker resumes it.
"""

import os
import re
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Membership
from tests.factories import ProjectFactory, PromptFactory, member
from tests.conftest import celery_worker_spawn, celery_worker_stop, worker_env
from tests.training.labels import demonstrations_create
from tests.training.test_worker import LONG, pid_gone, running_with_checkpoint, wait_final, wait_for
from loop import generation
from training import run_worker, services
from training.models import GenerationJob, ModelVersion, TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
LOST_AFTER = timedelta(seconds=3)
RESUME_WITHIN_S = 120


@pytest.fixture
def victim(training_storage_root, tmp_path):
    queue = f"victim-{os.getpid()}-{time.monotonic_ns()}"
    proc = celery_worker_spawn(env=worker_env(training_storage_root), log_path=tmp_path / "victim.log",
                               queues=queue, name=queue)
    proc.queue = queue
    yield proc
    celery_worker_stop(proc)


def kill_whole_worker(proc) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the main process, its pool child and everything in its group
    proc.wait()


def recover(sweep, job_model, job_id: int) -> None:
    """Run the sweep until the lost job is queued again (its heartbeat first has to age past the threshold)."""
    wait_for(lambda: sweep(lost_after=LOST_AFTER) >= 1 or job_model.objects.get(pk=job_id).status != "running",
             timeout=60, what="the sweep to queue the lost job again", poll=1.0)


def test_a_run_resumes_on_another_worker_after_its_worker_is_killed(
    celery_worker_process, victim, tiny_base_model, client_for, monkeypatch
):
    project = ProjectFactory(slug=f"loss-{time.monotonic_ns()}")
    demonstrations_create(project=project, n=8)
    admin = member(project, Membership.Role.ADMIN)
    from training.tasks import run_execute

    monkeypatch.setattr(services, "run_enqueue", lambda *, run_id: run_execute.apply_async(args=[run_id],
                                                                                             queue=victim.queue))
    response = client_for(admin).post("/api/training-runs/", {"kind": "sft", "project": project.pk,
                                                               "base_model": tiny_base_model.pk, "config": LONG},
                                      format="json")
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    run_dir = Path(settings.STORAGE_ROOT) / f"runs/{run_id}"
    # Also wait for the first start line to reach the database: lines still in the victim's buffer die
    # with it, and the log tells the two attempts apart.
    wait_for(lambda: running_with_checkpoint(run_id, run_dir) and "pipeline started at step 0/" in
             TrainingRun.objects.get(pk=run_id).log_tail, timeout=180, what="the victim to checkpoint")
    run = TrainingRun.objects.get(pk=run_id)
    pipeline_pid = run.pipeline_pid
    monkeypatch.undo()  # from here on the platform's own queue: the standing worker resumes it

    killed_at = time.monotonic()
    kill_whole_worker(victim)
    wait_for(lambda: pid_gone(pipeline_pid), timeout=20, what="the pipeline to die with its worker")
    recover(run_worker.runs_recover_lost, TrainingRun, run_id)
    wait_for(lambda: TrainingRun.objects.get(pk=run_id).step > 0
             and "resumed from" in TrainingRun.objects.get(pk=run_id).log_tail
             and TrainingRun.objects.get(pk=run_id).worker not in ("", run.worker),
             timeout=RESUME_WITHIN_S - (time.monotonic() - killed_at), what="another worker to resume the run")
    run = wait_final(run_id, worker=celery_worker_process)
    assert run.status == "succeeded", f"{run.error}\n{run.log_tail}"
    assert re.search(r"worker \S+ lost \(no heartbeat since", run.log_tail), run.log_tail
    starts = [int(m) for m in re.findall(r"pipeline started at step (\d+)/", run.log_tail)]
    assert starts[0] == 0 and starts[-1] > 0, run.log_tail  # resumed from a checkpoint, not from scratch
    assert run.recoveries == 1 and ModelVersion.objects.filter(produced_by=run).exists()


def test_a_generation_job_starts_again_on_another_worker_after_its_worker_is_killed(
    celery_worker_process, victim, tiny_base_model, monkeypatch
):
    project = ProjectFactory(slug=f"gen-loss-{time.monotonic_ns()}")
    admin = member(project, Membership.Role.ADMIN)
    for i in range(120):
        PromptFactory(project=project, messages=[{"role": "user", "content": f"Say something kind, number {i}."}])
    from loop.tasks import generation_execute

    sent = []
    real = generation_execute.apply_async
    monkeypatch.setattr(generation_execute, "apply_async",
                        lambda args=None, **kw: sent.append(real(args=args, queue=victim.queue)))
    job = generation.generation_create(project=project, model_version=tiny_base_model, k=4, prompt_count=120,
                                       max_new_tokens=48, created_by=admin)
    wait_for(lambda: sent, timeout=10, what="the job's message")
    wait_for(lambda: (j := GenerationJob.objects.get(pk=job.pk)).status == "running" and j.pipeline_pid,
             timeout=120, what="the victim to start sampling")
    monkeypatch.undo()
    kill_whole_worker(victim)
    recover(generation.generation_jobs_recover_lost, GenerationJob, job.pk)
    job = wait_final_job(job.pk, celery_worker_process)
    assert job.status == "succeeded", f"{job.error}\n{job.log_tail}"
    assert job.recoveries == 1 and "lost" in job.log_tail and job.tasks_created > 0


def wait_final_job(job_id: int, worker) -> GenerationJob:
    try:
        return wait_for(lambda: (j := GenerationJob.objects.get(pk=job_id)).status in ("succeeded", "failed",
                                                                                      "cancelled") and j,
                        timeout=240, what=f"generation job {job_id} to finish")
    except AssertionError as exc:
        job = GenerationJob.objects.get(pk=job_id)
        raise AssertionError(f"{exc}\n{job.status}\n{job.log_tail}\n{worker.log_path.read_text()[-3000:]}") from None
