"""End to end through a real Celery worker over the broker (not eager), training the tiny model."""

import os
import re
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Membership
from tests.factories import ProjectFactory, member
from tests.training.labels import demonstrations_create
from training.models import MetricPoint, ModelVersion, TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FINAL = {"succeeded", "failed", "cancelled"}
# Small enough to take seconds on a CPU; checkpoints every 2 steps so a killed run can resume.
FAST = {"max_steps": 6, "batch_size": 2, "save_steps": 2, "logging_steps": 1, "max_length": 64}
# For the kill tests: long enough (several 2-second flushes) that the first attempt is still
# running when it is killed; the tiny model trains about 20 steps a second on a quiet machine.
LONG = {**FAST, "max_steps": 200, "save_steps": 5}


def running_with_checkpoint(run_id: int, run_dir: Path) -> bool:
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status in ("queued", "running"), f"the run ended before the kill: {run.status}\n{run.log_tail}"
    checkpoint = any((p / "trainer_state.json").exists() for p in run_dir.glob("checkpoint-*"))
    return checkpoint and run.status == "running" and bool(run.pipeline_pid)


def wait_for(predicate, *, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_final(run_id: int, timeout: float = 240, worker=None) -> TrainingRun:
    try:
        return wait_for(lambda: (r := TrainingRun.objects.get(pk=run_id)).status in FINAL and r,
                        timeout=timeout, what=f"run {run_id} to finish")
    except AssertionError as exc:
        run = TrainingRun.objects.get(pk=run_id)
        log = worker.log_path.read_text()[-4000:] if worker is not None else ""
        raise AssertionError(f"{exc}\nstatus {run.status}\n{run.log_tail[-3000:]}\n--- worker log ---\n{log}") from None


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def project():
    project = ProjectFactory(slug=f"e2e-{time.monotonic_ns()}")
    demonstrations_create(project=project, n=8)
    return project


@pytest.fixture
def admin(project):
    return member(project, Membership.Role.ADMIN)


def start(client_for, admin, project, base, config):
    response = client_for(admin).post(
        "/api/training-runs/", {"kind": "sft", "project": project.pk, "base_model": base.pk, "config": config},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_an_sft_run_trains_registers_and_generates(celery_worker_process, tiny_base_model, client_for, project, admin):
    run_id = start(client_for, admin, project, tiny_base_model, FAST)
    run = wait_final(run_id, worker=celery_worker_process)
    assert run.status == "succeeded", f"{run.error}\n{run.log_tail}\n{celery_worker_process.log_path.read_text()[-3000:]}"
    body = client_for(admin).get(f"/api/training-runs/{run_id}/").json()
    assert body["progress"] == 1.0 and body["step"] == body["total_steps"] == 6
    assert len(body["metrics"]["loss"]) >= 6 and body["worker"]
    model = ModelVersion.objects.get(pk=body["output_model"])
    assert (model.kind, model.parent_id, model.produced_by_id) == ("sft", tiny_base_model.pk, run_id)
    assert "train_loss" in model.metrics or "loss" in model.metrics
    # The gpu worker's warm launcher forked the pipeline: no cold import of torch per run.
    assert "[platform] attempt 1, forked by the warm launcher:" in run.log_tail, run.log_tail

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(settings.STORAGE_ROOT) / model.path
    tokenizer = AutoTokenizer.from_pretrained(path)
    lm = AutoModelForCausalLM.from_pretrained(path)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Say something nice about cats."}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = lm.generate(**prompt, max_new_tokens=8, do_sample=False)
    new_tokens = out[0, prompt["input_ids"].shape[1]:]
    assert len(new_tokens) > 0
    assert isinstance(tokenizer.decode(new_tokens, skip_special_tokens=True), str)


def test_cancel_a_running_run_stops_its_pipeline(celery_worker_process, tiny_base_model, client_for, project, admin):
    run_id = start(client_for, admin, project, tiny_base_model, {**FAST, "max_steps": 500, "save_steps": 500})
    wait_for(lambda: (r := TrainingRun.objects.get(pk=run_id)).status == "running" and r.step >= 1 and r.pipeline_pid,
             timeout=120, what="the run to make progress")
    pid = TrainingRun.objects.get(pk=run_id).pipeline_pid
    response = client_for(admin).post(f"/api/training-runs/{run_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelling"
    run = wait_final(run_id, timeout=60)
    assert run.status == "cancelled" and run.step < 500
    wait_for(lambda: pid_gone(pid), timeout=15, what="the pipeline process to exit")
    assert not ModelVersion.objects.filter(produced_by_id=run_id).exists()


def test_a_killed_pipeline_resumes_from_its_checkpoint(celery_worker_process, tiny_base_model, client_for, project, admin):
    run_id = start(client_for, admin, project, tiny_base_model, LONG)
    run_dir = Path(settings.STORAGE_ROOT) / f"runs/{run_id}"
    wait_for(lambda: running_with_checkpoint(run_id, run_dir), timeout=180, what="a checkpoint")
    pid = TrainingRun.objects.get(pk=run_id).pipeline_pid
    assert pid
    os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    run = wait_final(run_id, worker=celery_worker_process)
    assert run.status == "succeeded", f"{run.error}\n{run.log_tail}"
    assert "killed by signal 9" in run.log_tail
    starts = [int(m) for m in re.findall(r"pipeline started at step (\d+)/", run.log_tail)]
    assert len(starts) == 2 and starts[0] == 0 and starts[1] > 0, run.log_tail
    assert f"resumed from {run_dir}/checkpoint-{starts[1]}" in run.log_tail
    steps = list(MetricPoint.objects.filter(run=run, name="loss").values_list("step", flat=True))
    assert steps == sorted(steps) and len(steps) == len(set(steps)), steps  # no step trained twice on record
    assert run.step == LONG["max_steps"] and ModelVersion.objects.filter(produced_by=run).exists()


def test_a_lost_worker_process_is_redelivered_and_resumes(celery_worker_process, tiny_base_model, client_for,
                                                          project, admin):
    run_id = start(client_for, admin, project, tiny_base_model, LONG)
    run_dir = Path(settings.STORAGE_ROOT) / f"runs/{run_id}"
    # Also wait for the first start line to be flushed to the database: lines still in the
    # worker's buffer die with it, and the test reads the log to tell the two attempts apart.
    wait_for(lambda: running_with_checkpoint(run_id, run_dir) and "pipeline started at step 0/" in
             TrainingRun.objects.get(pk=run_id).log_tail, timeout=180, what="a checkpoint and the first start line")
    run = TrainingRun.objects.get(pk=run_id)
    worker_pid, pipeline_pid = int(run.worker.rsplit(":", 1)[1]), run.pipeline_pid
    os.kill(worker_pid, signal.SIGKILL)  # the prefork child dies mid-task; the message was never acked
    wait_for(lambda: pid_gone(pipeline_pid), timeout=15, what="the pipeline to die with its worker")
    run = wait_final(run_id, worker=celery_worker_process)
    assert run.status == "succeeded", f"{run.error}\n{run.log_tail}"
    assert "resumes the run after losing its worker" in run.log_tail
    starts = [int(m) for m in re.findall(r"pipeline started at step (\d+)/", run.log_tail)]
    assert starts[0] == 0 and starts[-1] > 0, run.log_tail
    assert run.worker != f"{run.worker.rsplit(':', 1)[0]}:{worker_pid}"


def test_a_cancelled_run_resumes_from_its_checkpoint_and_a_retry_starts_over(
    celery_worker_process, tiny_base_model, client_for, project, admin
):
    run_id = start(client_for, admin, project, tiny_base_model, {**LONG, "max_steps": 40})
    run_dir = Path(settings.STORAGE_ROOT) / f"runs/{run_id}"
    wait_for(lambda: running_with_checkpoint(run_id, run_dir), timeout=180, what="a checkpoint")
    assert client_for(admin).post(f"/api/training-runs/{run_id}/cancel/").json()["status"] == "cancelling"
    assert wait_final(run_id, timeout=60).status == "cancelled"
    resumed = client_for(admin).post(f"/api/training-runs/{run_id}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] in ("queued", "running")  # a fast worker may have it
    run = wait_final(run_id, worker=celery_worker_process)
    assert run.status == "succeeded", f"{run.error}\n{run.log_tail}"
    assert f"resumed by {admin.username}, from its last checkpoint" in run.log_tail
    starts = [int(m) for m in re.findall(r"pipeline started at step (\d+)/", run.log_tail)]
    assert starts[0] == 0 and starts[-1] > 0, run.log_tail
    assert client_for(admin).post(f"/api/training-runs/{run_id}/resume/").status_code == 409  # succeeded
    TrainingRun.objects.filter(pk=run_id).update(status="failed")
    retry = client_for(admin).post(f"/api/training-runs/{run_id}/retry/")
    assert retry.status_code == 201, retry.content
    again = wait_final(retry.json()["id"], worker=celery_worker_process)
    assert again.status == "succeeded" and again.snapshot_id == run.snapshot_id and again.config == run.config
    assert re.findall(r"pipeline started at step (\d+)/", again.log_tail)[0] == "0"  # from scratch


def test_a_truncated_last_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
    celery_worker_process, tiny_base_model, client_for, project, admin
):
    # 300 steps: still running when cancelled; a line per 25 steps keeps the resume's lines in the 200-line tail.
    run_id = start(client_for, admin, project, tiny_base_model, {**LONG, "max_steps": 300, "logging_steps": 25})
    run_dir = Path(settings.STORAGE_ROOT) / f"runs/{run_id}"

    def two_checkpoints():
        steps = sorted(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*")
                       if (p / "trainer_state.json").exists())
        return len(steps) >= 2 and TrainingRun.objects.get(pk=run_id).status == "running" and steps

    wait_for(two_checkpoints, timeout=180, what="two checkpoints")
    assert client_for(admin).post(f"/api/training-runs/{run_id}/cancel/").json()["status"] == "cancelling"
    assert wait_final(run_id, timeout=60).status == "cancelled"
    # The cancel may land mid-save and leave a newer checkpoint without its trainer state, which
    # resume passes over as unfinished; the damage is put in the last complete one.
    steps = sorted(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*")
                   if (p / "trainer_state.json").exists() and (p / "model.safetensors").exists())
    last = run_dir / f"checkpoint-{steps[-1]}" / "model.safetensors"
    last.write_bytes(last.read_bytes()[:1024])  # as if the worker died while saving it
    assert client_for(admin).post(f"/api/training-runs/{run_id}/resume/").status_code == 200
    run = wait_final(run_id, worker=celery_worker_process)
    assert run.status == "succeeded", f"{run.error}\n{run.log_tail}"
    assert f"checkpoint-{steps[-1]} is damaged" in run.log_tail, run.log_tail
    assert f"resumed from {run_dir}/checkpoint-{steps[-2]}" in run.log_tail
    assert (run_dir / f"damaged-checkpoint-{steps[-1]}").is_dir()
