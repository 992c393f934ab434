"""The job machinery (jobs/): one row shape, one lifecycle and a pluggable executor for every kind of job."""

import subprocess
import sys
import textwrap
import time

import pytest

from jobs import lifecycle
from jobs.executors import LocalExecutor, pipeline_execute
from jobs.models import Job
from tests.factories import ProjectFactory, model_version
from training.models import GenerationJob, TrainingRun

SCRIPT = textwrap.dedent("""
    import json, sys, time
    print(json.dumps({"event": "start", "step": 0, "total": 3}), flush=True)
    for step in (1, 2, 3):
        print(json.dumps({"event": "progress", "step": step, "total": 3, "metrics": {"loss": 1.0 / step}}), flush=True)
    print("a plain log line", flush=True)
    if sys.argv[1] == "hang":
        time.sleep(60)
""")


class RecordingExecutor(LocalExecutor):
    """An executor of our own: what a Ray or Slurm executor would plug in, here a plain local process."""

    def __init__(self):
        self.started, self.killed = [], []

    def start(self, command, *, env):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        self.started.append(command)
        return process, "recorded"

    def kill(self, process):
        self.killed.append(process.pid)
        super().kill(process)


def test_both_job_tables_share_the_abstract_job_columns():
    shared = {f.name for f in Job._meta.get_fields()}
    assert {"status", "worker", "pipeline_pid", "heartbeat_at", "step", "total_steps", "log_tail", "error",
            "started_at", "finished_at", "recoveries"} <= shared
    for model in (TrainingRun, GenerationJob):
        assert issubclass(model, Job) and model.Status is Job.Status
        assert {f.name for f in model._meta.concrete_fields} >= shared
    assert TrainingRun._meta.db_table == "training_trainingrun"
    assert GenerationJob._meta.db_table == "training_generationjob"


def test_any_executor_runs_a_pipeline_and_its_output_streams_into_flushes():
    executor, flushed, started = RecordingExecutor(), [], []

    def flush(batch):
        flushed.append((batch.step, list(batch.points), list(batch.lines)))
        batch.points, batch.lines = [], []
        return "running"

    code, stopped, state = pipeline_execute(
        command=[sys.executable, "-c", SCRIPT, "ok"], env={}, flush=flush, running="running",
        on_start=lambda process, note: started.append(note), executor=executor,
    )
    assert (code, stopped, started) == (0, None, ["recorded"])
    points = [point for _, batch_points, _ in flushed for point in batch_points]
    assert points == [(1, "loss", 1.0), (2, "loss", 0.5), (3, "loss", 1.0 / 3)]
    assert "a plain log line" in [line for _, _, lines in flushed for line in lines]
    assert flushed[-1][0] == 3 and state.max_step == 3 and executor.killed == []


def test_an_interrupted_worker_kills_the_pipeline_and_ends_the_job():
    executor, aborted = RecordingExecutor(), []

    def flush(batch):
        raise KeyboardInterrupt  # as a time limit or a lost database would, in the middle of a flush

    with pytest.raises(KeyboardInterrupt):
        pipeline_execute(command=[sys.executable, "-c", SCRIPT, "hang"], env={}, flush=flush, running="running",
                         on_abort=aborted.append, executor=executor)
    assert len(executor.killed) == 1 and isinstance(aborted[0], KeyboardInterrupt)


@pytest.mark.django_db
@pytest.mark.parametrize("model", [TrainingRun, GenerationJob])
def test_one_lifecycle_for_every_job(model):
    project = ProjectFactory()
    base = model_version(name="tiny", kind="base", path="models/tiny")
    if model is TrainingRun:
        job = TrainingRun.objects.create(kind="sft", project=project, base_model=base)
    else:
        job = GenerationJob.objects.create(project=project, model_version=base, k=2, prompt_ids=[1])
    claimed, taken_over = lifecycle.job_claim(model=model, pk=job.pk, worker="host:1")
    assert claimed.status == "running" and not taken_over
    assert lifecycle.job_claim(model=model, pk=job.pk, worker="host:2") == (None, False)  # its worker lives
    assert lifecycle.job_progress_flush(model=model, job=claimed, step=1, total=4, log_lines=["one"]) == "running"
    lifecycle.job_cancel(model=model, pk=job.pk, noun="job")
    assert lifecycle.job_progress_flush(model=model, job=claimed, step=2) == "cancelling"
    ended = lifecycle.job_finish(model=model, job=claimed, status="cancelled", log_line="[platform] cancelled")
    assert (ended.status, ended.step, ended.total_steps) == ("cancelled", 2, 4)
    assert ended.log_tail.splitlines() == ["one", "[platform] cancelled"]
    lifecycle.job_finish(model=model, job=ended, status="succeeded")  # a final status never changes
    assert model.objects.get(pk=job.pk).status == "cancelled"


@pytest.mark.django_db(transaction=True)  # the heartbeat thread writes on its own connection
def test_a_long_silent_step_keeps_the_heartbeat_fresh():
    project = ProjectFactory()
    base = model_version(name="tiny", kind="base", path="models/tiny")
    run = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="running")
    assert run.heartbeat_at is None
    with lifecycle.job_heartbeat_while(model=TrainingRun, pk=run.pk, every=0.05):
        time.sleep(0.5)  # a query that returns nothing for a while
        first = TrainingRun.objects.get(pk=run.pk).heartbeat_at
        time.sleep(0.3)
        later = TrainingRun.objects.get(pk=run.pk).heartbeat_at
    assert first is not None and later > first
    stopped = TrainingRun.objects.get(pk=run.pk).heartbeat_at  # a beat in flight as the block ended may land
    time.sleep(0.2)
    assert stopped >= later and TrainingRun.objects.get(pk=run.pk).heartbeat_at == stopped  # it stops with the step
