"""Several processes on one machine: the launch options, the accelerate command, the worker's GPUs, the configs.

The configs are loaded the way `accelerate launch --config_file X` loads them, up to the environment
its ranks would get, and that environment is read back by accelerate's own DeepSpeed and FSDP
plugins. Nothing here needs a GPU or the deepspeed package; the runs that really start two ranks
(over gloo, on the CPU) are in test_distributed_worker.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from annotation.models import Membership
from jobs.outcome import Outcome
from jobs.stream import signal_group
from tests.factories import ProjectFactory, member, model_version
from tests.test_openapi import config_properties
from tests.training.labels import demonstrations_create
from tests.training.test_worker import pid_gone, wait_for
from training import capacity, launch, runner, services
from training.models import TrainingRun


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.fixture
def sft_setup(db, monkeypatch):
    monkeypatch.setattr(services, "run_enqueue", lambda *, run_id: None)
    project = ProjectFactory(slug=f"dist-{os.getpid()}-{id(monkeypatch)}")
    admin = member(project, Membership.Role.ADMIN)
    demonstrations_create(project=project, n=2)
    base = model_version(name=f"tiny-dist-{id(monkeypatch)}", kind="base", path="models/tiny")

    def create(config: dict) -> TrainingRun:
        return services.run_create(kind="sft", project=project, base_model=base, config=config, created_by=admin)

    return project, admin, base, create


@pytest.mark.django_db
def test_a_gpu_run_launches_its_strategy_config_on_a_free_port_with_bf16_unless_the_run_says_no(
    sft_setup, monkeypatch
):
    *_, create = sft_setup
    monkeypatch.setenv(capacity.GPU_IDS_ENV, "0,1,2,3")
    run = create({"max_steps": 2, "num_gpus": 4, "distributed": "zero3"})
    command = runner.pipeline_command(run=run, config_path=Path("run.json"))
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert option(command, "--config_file") == str(Path(launch.__file__).parent / "accelerate" / "zero3.yaml")
    assert (option(command, "--num_processes"), option(command, "--main_process_port")) == ("4", "0")
    assert option(command, "--mixed_precision") == "bf16"
    assert command[-4:] == ["-m", "training.pipelines.sft", "--config", "run.json"]
    assert runner.pipeline_run_env(run=run)["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"  # the worker's own GPUs

    no_bf16 = create({"max_steps": 2, "num_gpus": 2, "bf16": False})
    command = runner.pipeline_command(run=no_bf16, config_path=Path("run.json"))
    assert option(command, "--config_file").endswith("ddp.yaml")  # the default strategy
    assert option(command, "--mixed_precision") == "no"
    single = create({"max_steps": 2})
    assert runner.pipeline_command(run=single, config_path=Path("run.json")) == [
        sys.executable, "-m", "training.pipelines.sft", "--config", "run.json"]


@pytest.mark.django_db
def test_cpu_processes_run_ddp_without_mixed_precision_and_hide_the_gpus(sft_setup, monkeypatch):
    *_, create = sft_setup
    monkeypatch.setenv(capacity.GPU_IDS_ENV, "0")
    monkeypatch.setattr(launch, "cpu_count", lambda: 4)
    run = create({"max_steps": 2, "cpu_processes": 2})
    command = runner.pipeline_command(run=run, config_path=Path("run.json"))
    assert option(command, "--config_file").endswith("ddp.yaml") and option(command, "--num_processes") == "2"
    assert option(command, "--mixed_precision") == "no"
    assert runner.pipeline_run_env(run=run)["CUDA_VISIBLE_DEVICES"] == ""
    assert {"cpu_processes", "distributed"} <= set(services.PLATFORM_OPTIONS)  # never reach the pipeline's run.json


@pytest.mark.django_db
def test_more_cpu_processes_than_the_worker_has_cores_fail_the_run_before_anything_starts(sft_setup, monkeypatch):
    *_, create = sft_setup
    monkeypatch.setattr(launch, "cpu_count", lambda: 2)
    run = create({"max_steps": 2, "cpu_processes": 3})
    assert runner.run_execute(run_id=run.pk) == Outcome.FAILED
    run.refresh_from_db()
    assert run.status == "failed" and "config.cpu_processes is 3, but this worker has 2 CPU cores" in run.error
    assert run.pipeline_pid is None


@pytest.mark.django_db
@pytest.mark.parametrize(("config", "field", "words"), [
    ({"distributed": "zero4"}, "config.distributed", "one of ddp, zero2, zero3, fsdp"),
    ({"distributed": "zero3"}, "config.distributed", "needs num_gpus > 1"),
    ({"distributed": "fsdp", "num_gpus": 1}, "config.distributed", "needs num_gpus > 1"),
    ({"distributed": "fsdp", "cpu_processes": 2}, "config.distributed", "fsdp needs GPUs"),
    ({"cpu_processes": 2, "num_gpus": 2}, "config.cpu_processes", "GPUs (num_gpus) or CPU processes"),
    ({"cpu_processes": 0}, "config.cpu_processes", "from 1 to 64"),
    ({"cpu_processes": "2"}, "config.cpu_processes", "expected int"),
])
def test_bad_launch_options_are_refused_at_create_naming_the_field(client_for, sft_setup, monkeypatch, config,
                                                                    field, words):
    project, admin, base, _ = sft_setup
    response = client_for(admin).post("/api/training-runs/", {
        "kind": "sft", "project": project.pk, "base_model": base.pk, "config": {"max_steps": 2, **config}},
        format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and words in response.json()["detail"]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_more_gpus_than_any_worker_owns_is_refused_at_create(client_for, sft_setup, monkeypatch):
    project, admin, base, _ = sft_setup
    monkeypatch.setenv(capacity.GPU_IDS_ENV, "4,5")
    capacity.gpu_capacity_record(worker="box:1", gpus=capacity.visible_gpu_count())
    body = {"kind": "sft", "project": project.pk, "base_model": base.pk,
            "config": {"max_steps": 2, "num_gpus": 4, "distributed": "fsdp"}}
    refused = client_for(admin).post("/api/training-runs/", body, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "config.num_gpus"
    assert "largest gpu worker has 2 GPUs" in refused.json()["detail"]
    body["config"]["num_gpus"] = 2
    assert client_for(admin).post("/api/training-runs/", body, format="json").status_code == 201


def test_the_worker_owns_the_gpus_it_is_given_and_its_pipelines_see_only_those(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setenv(capacity.GPU_IDS_ENV, "2,3")
    assert capacity.visible_gpu_count() == 2 and services.pipeline_env()["CUDA_VISIBLE_DEVICES"] == "2,3"
    monkeypatch.setenv(capacity.GPU_IDS_ENV, "")
    assert capacity.visible_gpu_count() == 0 and services.pipeline_env()["CUDA_VISIBLE_DEVICES"] == ""
    monkeypatch.delenv(capacity.GPU_IDS_ENV)
    assert capacity.visible_gpu_count() == 4 and services.pipeline_env()["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"


@pytest.mark.django_db
def test_the_api_schema_offers_the_launch_options(client):
    body = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    sft = config_properties(body, "sft")
    assert sft["distributed"]["enum"] == list(launch.STRATEGIES) and sft["distributed"]["default"] == "ddp"
    assert (sft["cpu_processes"]["minimum"], sft["cpu_processes"]["maximum"]) == (1, 64)
    assert "global batch" in sft["cpu_processes"]["description"]


@pytest.mark.django_db
def test_the_new_run_page_shows_the_strategy_beside_the_gpus(client_for, sft_setup):
    project, admin, _, _ = sft_setup
    client = client_for(admin)
    client.force_login(admin)
    page = client.get(f"/training/runs/new/?project={project.pk}&kind=sft").content.decode()
    assert 'name="config-distributed"' in page and 'name="config-cpu_processes"' in page
    for strategy in launch.STRATEGIES:
        assert f'value="{strategy}"' in page


def test_a_pipeline_launched_in_bf16_on_a_device_without_it_names_the_field(monkeypatch):
    from types import SimpleNamespace

    from training.pipelines import common

    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert common.use_bf16(SimpleNamespace(bf16=None), "cpu") is False
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # what a CPU launch passes
    assert common.use_bf16(SimpleNamespace(bf16=None), "cpu") is False
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    with pytest.raises(common.ConfigError) as error:
        common.use_bf16(SimpleNamespace(bf16=None), "cpu")
    assert error.value.field == "bf16" and "set bf16 to false" in error.value.message


# The shipped accelerate configs, loaded as `accelerate launch` loads them ----------------------


def launched_env(command: list[str]) -> tuple[object, dict]:
    """What `accelerate launch` would do with our argv, short of starting processes: (args, rank env)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(command[3:])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        # What launch_command does before deepspeed_launcher, which itself needs the deepspeed package.
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    return args, env


@pytest.mark.parametrize("strategy", launch.STRATEGIES)
def test_each_shipped_config_loads_through_accelerate_launch(strategy, monkeypatch):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    config = load_config_from_file(str(launch.config_file(strategy)))
    assert config.mixed_precision == "bf16" and config.num_machines == 1
    assert launch.config_file(strategy).read_text().startswith("#")  # each says what it is for
    command = launch.accelerate_command(module=["-m", "training.pipelines.sft", "--config", "run.json"],
                                        processes=8, strategy=strategy, cpu=False, bf16=None)
    args, env = launched_env(command)
    assert args.num_processes == 8 and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert args.module and args.training_script == "training.pipelines.sft"
    assert args.main_process_port > 0  # 0 on the command line: a free port, picked by accelerate
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if strategy == "ddp":
        assert args.multi_gpu and not args.use_deepspeed and not args.use_fsdp
        assert args.nproc_per_node == "8"
    elif strategy in ("zero2", "zero3"):
        plugin = DeepSpeedPlugin()  # reads the environment the ranks would get; needs no deepspeed package
        stage = int(strategy[-1])
        assert plugin.zero_stage == stage and plugin.deepspeed_config["zero_optimization"]["stage"] == stage
        assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == "auto"  # from the run's batch_size
        assert plugin.deepspeed_config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is (
            stage == 3)  # ZeRO-3's final model is gathered into an ordinary checkpoint
    else:
        plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and "FULL_STATE_DICT" in str(plugin.state_dict_type)
        assert plugin.auto_wrap_policy is not None


def test_a_cpu_launch_parses_as_a_multi_process_ddp_launch_without_mixed_precision():
    command = launch.accelerate_command(module=["-m", "training.pipelines.reward", "--config", "run.json"],
                                        processes=2, strategy="ddp", cpu=True, bf16=None)
    args, env = launched_env(command)
    # --cpu would start one process (accelerate's simple launcher); the multi-GPU launcher starts two
    # ranks, which join over gloo when they find no GPU.
    assert args.multi_gpu and not args.cpu and args.nproc_per_node == "2"
    assert env["ACCELERATE_MIXED_PRECISION"] == "no"


# Stopping every rank --------------------------------------------------------------------------


def test_signal_group_reaches_descendants_that_started_sessions_of_their_own(tmp_path):
    """As torch's elastic launcher does with every rank: a SIGKILL to the launcher's group alone would miss them."""
    pids = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
                    for _ in range(2)]
        open({str(pids)!r}, "w").write(" ".join(str(c.pid) for c in children))
        time.sleep(120)
    """)
    launcher = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        ranks = wait_for(lambda: pids.exists() and pids.read_text().split(), timeout=30, what="the ranks")
        ranks = [int(pid) for pid in ranks]
        assert all(os.getpgid(pid) == pid != launcher.pid for pid in ranks)  # each its own session
        signal_group(launcher, signal.SIGKILL)
        launcher.wait(timeout=10)
        wait_for(lambda: all(pid_gone(pid) for pid in ranks), timeout=10, what="every rank to die")
    finally:
        if launcher.poll() is None:
            launcher.kill()
