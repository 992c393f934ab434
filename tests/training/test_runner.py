"""The worker's side without Celery: claiming, streaming a (fake) pipeline, cancelling, the orphan sweep."""

import json
import os
import socket
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Membership
from tests.factories import ProjectFactory, member, model_version
from tests.training.labels import demonstrations_create
from jobs import stream
from jobs.outcome import Outcome
from training import capacity, run_worker, runner, services, tasks
from training.models import MetricPoint, ModelVersion, TrainingRun

FAKE_PIPELINE = textwrap.dedent("""
    import json, os, sys, time
    cfg = json.load(open(sys.argv[sys.argv.index("--config") + 1]))
    out = cfg["output_dir"]
    mode = os.environ.get("FAKE_MODE", "ok")
    total = 0 if mode.startswith("zero") else cfg.get("max_steps", 4)  # zero: a run that never steps
    print(json.dumps({"event": "start", "step": 0, "total": total, "resumed_from": None, "device": "cpu"}), flush=True)
    print("some library warning", flush=True)
    for step in range(1, total + 1):
        print(json.dumps({"event": "progress", "step": step, "total": total,
                          "metrics": {"loss": 2.0 / step, "flag": True}}), flush=True)
        if mode == "slow":
            time.sleep(0.5)
    if mode == "fail":
        print(json.dumps({"event": "error", "message": "ValueError: bad data on line 3"}), flush=True)
        sys.exit(1)
    if mode == "signal":
        os.kill(os.getpid(), 9)
    os.makedirs(os.path.join(out, "model"), exist_ok=True)
    json.dump({"loss": 0.5}, open(os.path.join(out, "metrics.json"), "w"))
    done = {"event": "done", "metrics": {"loss": 0.5}}
    if mode == "zero-reported":
        done["step"] = 0  # as the real pipelines report it (common.finish)
    print(json.dumps(done), flush=True)
""")


@pytest.fixture
def fake_pipeline(monkeypatch, tmp_path):
    script = tmp_path / "fake_pipeline.py"
    script.write_text(FAKE_PIPELINE)
    monkeypatch.setattr(runner, "pipeline_command",
                        lambda *, run, config_path: [sys.executable, str(script), "--config", str(config_path)])
    monkeypatch.setattr(stream, "FLUSH_SECONDS", 0.2)
    return script


@pytest.fixture
def queued_run(db):
    project = ProjectFactory(slug="runner")
    admin = member(project, Membership.Role.ADMIN)
    demonstrations_create(project=project, n=2)
    base = model_version(name="tiny", kind="base", path="models/tiny")
    return services.run_create(kind="sft", project=project, base_model=base, config={"max_steps": 4},
                               created_by=admin)


@pytest.mark.django_db
def test_claim_is_idempotent(queued_run):
    first = run_worker.run_claim(run_id=queued_run.pk, worker="host-a:1")
    assert first is not None and first.status == "running" and first.started_at
    assert run_worker.run_claim(run_id=queued_run.pk, worker="host-a:1") is None
    # a different worker while the first still beats: nothing to do
    assert run_worker.run_claim(run_id=queued_run.pk, worker="host-b:2") is None
    assert TrainingRun.objects.get(pk=queued_run.pk).worker == "host-a:1"


@pytest.mark.django_db
def test_a_redelivered_run_whose_worker_is_gone_is_resumed(queued_run):
    here = socket.gethostname()
    TrainingRun.objects.filter(pk=queued_run.pk).update(status="running", worker=f"{here}:{os.getppid()}",
                                                        heartbeat_at=timezone.now())
    # its worker process is alive: the redelivery is a duplicate
    assert run_worker.run_claim(run_id=queued_run.pk, worker=f"{here}:{os.getpid()}") is None
    dead_pid = 4_000_000  # above pid_max: no such process
    TrainingRun.objects.filter(pk=queued_run.pk).update(worker=f"{here}:{dead_pid}")
    resumed = run_worker.run_claim(run_id=queued_run.pk, worker=f"{here}:{os.getpid()}")
    assert resumed is not None and resumed.worker == f"{here}:{os.getpid()}"
    assert "resumes the run" in resumed.log_tail
    # on another host, only the heartbeat tells: stale means gone
    TrainingRun.objects.filter(pk=queued_run.pk).update(worker="elsewhere:1", heartbeat_at=timezone.now())
    assert run_worker.run_claim(run_id=queued_run.pk, worker="me:2") is None
    TrainingRun.objects.filter(pk=queued_run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
    assert run_worker.run_claim(run_id=queued_run.pk, worker="me:2") is not None


@pytest.mark.django_db
def test_finished_or_cancelled_runs_are_not_claimed(queued_run):
    services.run_cancel(run=queued_run)
    assert run_worker.run_claim(run_id=queued_run.pk, worker="w:1") is None
    assert runner.run_execute(run_id=queued_run.pk) == Outcome.SKIPPED
    assert TrainingRun.objects.get(pk=queued_run.pk).status == "cancelled"


@pytest.mark.django_db
def test_the_recovery_sweep_queues_a_lost_workers_run_again_and_gives_up_after_three(
    queued_run, monkeypatch, django_capture_on_commit_callbacks
):
    from jobs import recovery

    enqueued = []
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda args=None, **kw: enqueued.append(args))
    project, base = queued_run.project, queued_run.base_model
    stale_at = timezone.now() - timedelta(seconds=90)
    lost = dict(status="running", heartbeat_at=stale_at, worker="elsewhere:4242")
    TrainingRun.objects.filter(pk=queued_run.pk).update(**lost)
    fresh = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="running",
                                       heartbeat_at=timezone.now(), worker="elsewhere:1")
    mine = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="running",
                                      heartbeat_at=stale_at, worker=f"{socket.gethostname()}:{os.getppid()}")  # alive here
    stopping = TrainingRun.objects.create(kind="sft", project=project, base_model=base, status="cancelling",
                                          heartbeat_at=stale_at, worker="elsewhere:7")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.runs_recover_lost() == 2
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert (run.status, run.worker, run.recoveries, run.finished_at) == ("queued", "", 1, None)
    assert "worker elsewhere:4242 lost" in run.log_tail and enqueued == [[run.pk]]
    assert TrainingRun.objects.get(pk=fresh.pk).status == "running"
    assert TrainingRun.objects.get(pk=mine.pk).status == "running"
    assert TrainingRun.objects.get(pk=stopping.pk).status == "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.runs_recover_lost() == 0
    for _ in range(recovery.MAX_RECOVERIES - 1):  # lost again and again
        TrainingRun.objects.filter(pk=run.pk).update(**lost)
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.runs_recover_lost() == 1
    TrainingRun.objects.filter(pk=run.pk).update(**lost)
    assert tasks.runs_recover_lost() == 1
    run.refresh_from_db()
    assert run.status == "failed" and run.error.startswith("worker lost 4 times") and len(enqueued) == 3


@pytest.mark.django_db
def test_streaming_records_progress_metrics_log_and_the_output_model(queued_run, fake_pipeline, settings):
    assert runner.run_execute(run_id=queued_run.pk) == Outcome.SUCCEEDED
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert run.status == "succeeded" and (run.step, run.total_steps) == (4, 4) and run.finished_at
    assert [p.value for p in MetricPoint.objects.filter(run=run, name="loss")] == [2.0, 1.0, 2.0 / 3, 0.5]
    assert not MetricPoint.objects.filter(name="flag").exists()  # booleans are not metrics
    assert "some library warning" in run.log_tail and '"event"' not in run.log_tail
    model = ModelVersion.objects.get(produced_by=run)
    assert (model.kind, model.parent, model.project, model.metrics) == ("sft", run.base_model, run.project, {"loss": 0.5})
    assert model.path == f"runs/{run.pk}/model"
    written = json.loads((Path(settings.STORAGE_ROOT) / f"runs/{run.pk}/run.json").read_text())
    assert written["max_steps"] == 4 and written["train_file"].endswith(run.snapshot.path)
    assert written["output_dir"] == str(Path(settings.STORAGE_ROOT) / f"runs/{run.pk}")
    assert "num_gpus" not in written


@pytest.mark.django_db
@pytest.mark.parametrize(("visible", "count"), [("", 0), ("0", 1), ("-1", 0)])
def test_more_gpus_than_the_worker_has_fail_the_run_instead_of_training_on_fewer(
    db, monkeypatch, visible, count
):
    project = ProjectFactory(slug="gpus")
    admin = member(project, Membership.Role.ADMIN)
    demonstrations_create(project=project, n=2)
    base = model_version(name="tiny-gpus", kind="base", path="models/tiny")
    run = services.run_create(kind="sft", project=project, base_model=base, config={"max_steps": 2, "num_gpus": 2},
                              created_by=admin)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert capacity.visible_gpu_count() == count
    assert runner.run_execute(run_id=run.pk) == Outcome.FAILED
    run.refresh_from_db()
    assert run.status == "failed" and f"num_gpus is 2, but this worker has {count} GPU" in run.error
    assert run.pipeline_pid is None and "attempt" not in run.log_tail  # nothing was started
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    command = runner.pipeline_command(run=run, config_path=Path("run.json"))
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--num_processes") + 1] == "2"


@pytest.mark.django_db
def test_a_run_asking_more_gpus_than_any_worker_has_is_refused_when_created(client_for, monkeypatch):
    monkeypatch.setattr("training.tasks.run_execute.apply_async", lambda *a, **k: None)
    project = ProjectFactory(slug="gpu-capacity")
    admin = member(project, Membership.Role.ADMIN)
    demonstrations_create(project=project, n=2)
    base = model_version(name="tiny-capacity", kind="base", path="models/tiny")

    def start(gpus):
        return client_for(admin).post("/api/training-runs/", {"kind": "sft", "project": project.pk, "base_model":
                                                               base.pk, "config": {"num_gpus": gpus}}, format="json")

    assert start(2).status_code == 201  # no worker has said what it has: the worker decides
    capacity.gpu_capacity_record(worker="box-a:1", gpus=1)
    capacity.gpu_capacity_record(worker="box-b:1", gpus=2)
    refused = start(4)
    assert refused.status_code == 400 and refused.json()["field"] == "config.num_gpus"
    assert "largest gpu worker has 2 GPUs" in refused.json()["detail"]
    assert start(2).status_code == 201
    capacity.gpu_capacity_forget(worker="box-b:1")
    assert start(2).status_code == 400 and TrainingRun.objects.count() == 2


@pytest.mark.django_db
def test_a_failing_pipeline_fails_the_run_with_its_error(queued_run, fake_pipeline, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "fail")
    assert runner.run_execute(run_id=queued_run.pk) == Outcome.FAILED
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert run.status == "failed" and "bad data on line 3" in run.error
    assert not ModelVersion.objects.filter(produced_by=run).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["zero", "zero-reported"])
def test_a_pipeline_done_after_zero_steps_fails_the_run_and_registers_no_model(
    queued_run, fake_pipeline, monkeypatch, mode
):
    monkeypatch.setenv("FAKE_MODE", mode)
    assert runner.run_execute(run_id=queued_run.pk) == Outcome.FAILED
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert run.status == "failed" and run.finished_at
    assert "0 optimizer steps" in run.error and "no model was registered" in run.error
    assert "max_steps=4" in run.error and "training rows=2" in run.error
    assert "[platform] pipeline done" in run.log_tail  # it did say done: the runner decided
    assert not ModelVersion.objects.filter(produced_by=run).exists()
    assert ModelVersion.objects.count() == 1  # only the base model


@pytest.mark.django_db
def test_a_pipeline_killed_by_a_signal_is_requeued_until_the_last_attempt(queued_run, fake_pipeline, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "signal")
    assert runner.run_execute(run_id=queued_run.pk, attempt=1, max_attempts=2) == Outcome.RETRY
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert run.status == "queued" and "killed by signal 9" in run.log_tail
    assert runner.run_execute(run_id=queued_run.pk, attempt=2, max_attempts=2) == Outcome.FAILED
    assert "killed by signal 9" in TrainingRun.objects.get(pk=queued_run.pk).error


@pytest.mark.django_db(transaction=True)
def test_cancelling_terminates_the_pipeline(fake_pipeline, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "slow")
    project = ProjectFactory(slug="cancel")
    admin = member(project, Membership.Role.ADMIN)
    demonstrations_create(project=project, n=1)
    base = model_version(name="tiny", kind="base", path="models/tiny")
    with monkeypatch.context() as patch:
        patch.setattr(services, "run_enqueue", lambda *, run_id: None)
        run = services.run_create(kind="sft", project=project, base_model=base, config={"max_steps": 100},
                                  created_by=admin)

    def cancel_when_running():
        for _ in range(200):
            current = TrainingRun.objects.get(pk=run.pk)
            if current.status == "running" and current.step >= 1:
                services.run_cancel(run=current)
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    started = time.monotonic()
    outcome = runner.run_execute(run_id=run.pk)
    canceller.join()
    run.refresh_from_db()
    assert outcome == Outcome.CANCELLED and run.status == "cancelled"
    assert 1 <= run.step < 100 and time.monotonic() - started < 30
    assert run.pipeline_pid is None


@pytest.mark.django_db
def test_bootstrap_registers_a_hub_model_without_downloading(settings):
    settings.BASE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
    call_command("bootstrap_base_model")
    model = ModelVersion.objects.get(name="Qwen/Qwen2.5-0.5B-Instruct")
    assert (model.kind, model.path, model.project) == ("base", "Qwen/Qwen2.5-0.5B-Instruct", None)
    call_command("bootstrap_base_model")
    assert ModelVersion.objects.filter(kind="base").count() == 1



@pytest.mark.django_db
def test_bootstrap_says_what_it_registers_and_how_long_it_took(tiny_base_model_dir):
    """`make demo` runs this first; on a second run the model is there, and the command says so."""
    from io import StringIO

    out = StringIO()
    call_command("bootstrap_base_model", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Base model: tiny, already built under {tiny_base_model_dir}"
    model = ModelVersion.objects.get(name="tiny")
    assert lines[1].startswith(f"Registered tiny (base) at models/tiny (id {model.pk}) in ")
    assert lines[1].endswith(" s") and len(lines) == 2

@pytest.mark.django_db(transaction=True)
def test_train_command_starts_follows_and_reports(fake_pipeline, monkeypatch, capsys):
    from django.core.management.base import CommandError

    project = ProjectFactory(slug="cli")
    member(project, Membership.Role.ADMIN)
    demonstrations_create(project=project, n=2)
    model_version(name="tiny", kind="base", path="models/tiny")
    # the worker's part, run in this process as soon as the run is committed
    monkeypatch.setattr(services, "run_enqueue", lambda *, run_id: runner.run_execute(run_id=run_id))
    call_command("train", "--kind", "sft", "--project", "cli", "--set", "max_steps=3", "--poll", "0.01")
    out = capsys.readouterr().out
    run = TrainingRun.objects.order_by("-id").first()
    assert run.status == "succeeded" and run.config == {"max_steps": 3}
    assert "3/3" in out and "loss 0.6667" in out and "succeeded" in out
    with pytest.raises(CommandError, match="config.max_stepz"):
        call_command("train", "--kind", "sft", "--project", "cli", "--set", "max_stepz=3", "--no-follow")
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(CommandError, match="failed"):
        call_command("train", "--kind", "sft", "--project", "cli", "--poll", "0.01")


def test_the_log_keeps_a_progress_bar_once_and_no_terminal_colours():
    batch, state = stream.Batch(), stream.StreamState()
    raw = [
        "\x1b[33mWarning: something\x1b[0m\n",
        "Loading weights:   0%|          | 0/38 [00:00<?, ?it/s]\n",  # each \r redraw arrives as a line
        "Loading weights:  50%|#####     | 19/38 [00:00<00:00, 190.0it/s]\n",
        "Loading weights: 100%|##########| 38/38 [00:00<00:00, 380.0it/s]\n",
        "Map:   0%|          | 0/8 [00:00<?, ? examples/s]\n",
        "Map:  50%|#####     | 4/8 [00:00<00:00, 40.0 examples/s]\n",
        '{"event": "progress", "step": 1, "total": 4, "metrics": {"loss": 1.0}}\n',
        "\x1b[2K\n",
        "done.\n",
    ]
    for line in raw:
        stream._handle_line(line, batch, state)
    assert batch.lines == [
        "Warning: something",
        "Loading weights: 100%|##########| 38/38 [00:00<00:00, 380.0it/s]",
        "Map:  50%|#####     | 4/8 [00:00<00:00, 40.0 examples/s]",  # cut short by the progress event
        "done.",
    ]
    assert batch.step == 1 and state.pending_bar is None


@pytest.mark.django_db
def test_bootstrap_says_what_it_builds_how_long_it_takes_and_shows_its_steps(settings, tmp_path, monkeypatch):
    """The first `make demo` builds the tiny model: it names it and the time it takes, then prints about every
    tenth of its steps (here a stand-in build of 20 steps, so the test does not spend a minute training)."""
    from io import StringIO

    monkeypatch.setattr(services, "BASE_MODEL_PIPELINE", "tests.training.fake_base_model")
    settings.STORAGE_ROOT = tmp_path
    out = StringIO()
    call_command("bootstrap_base_model", "--max-steps", "20", stdout=out)
    lines = out.getvalue().splitlines()
    folder = tmp_path / "models" / "tiny"
    assert lines[0].startswith(f"Building the tiny base model under {folder}: ")
    assert lines[0].endswith("This takes one to two minutes, once.")
    steps = [line.split(",")[0].strip() for line in lines[1:-1]]
    assert steps == ["step 1/20"] + [f"step {n}/20" for n in range(2, 21, 2)]
    assert all(", loss " in line and line.endswith(" s") for line in lines[1:-1])
    assert lines[-1].startswith("Registered tiny (base) at models/tiny (id ")
    assert (folder / "config.json").exists()


@pytest.mark.django_db
def test_a_full_build_runs_every_step_and_replaces_one_that_its_time_cap_cut_short(settings, tmp_path, monkeypatch):
    """The full loop asks for every pretraining step: a loaded machine's capped build would make its figures
    depend on the load. A model that a capped build left short is built again; a complete one is kept."""
    monkeypatch.setattr(services, "BASE_MODEL_PIPELINE", "tests.training.fake_base_model")
    settings.STORAGE_ROOT = tmp_path
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "metrics.json").write_text(json.dumps({"steps": 18, "max_steps": 20}))
    kept = services.base_model_bootstrap(max_steps=20)
    assert kept.metrics == {"steps": 18, "max_steps": 20}  # without full=True a built model is used as it is
    model = services.base_model_bootstrap(max_steps=20, full=True)
    assert model.metrics == {"steps": 20, "max_steps": 20, "seconds_cap": 0.0}
    (folder / "metrics.json").write_text(json.dumps({"steps": 20, "max_steps": 20, "seconds_cap": 100.0}))
    assert services.base_model_bootstrap(max_steps=20, full=True).metrics["seconds_cap"] == 100.0


@pytest.mark.django_db
def test_a_failed_build_names_its_exit_status_and_last_line(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(services, "BASE_MODEL_PIPELINE", "tests.training.fake_base_model")
    settings.STORAGE_ROOT = tmp_path
    with pytest.raises(RuntimeError, match=r"failed \(exit status 2: .*--max-steps: invalid int value"):
        services.base_model_bootstrap(max_steps="many")
