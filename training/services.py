"""Writes of the training app: pipeline configs, the base model, starting, resuming and cancelling runs.

The worker's side of a run (claim, freeze, progress, finish) is training/run_worker.py, over the
job lifecycle of jobs/lifecycle.py; training/runner.py drives the pipeline.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation.errors import Conflict, InvalidInput
from annotation.export_filters import ExportFilters
from annotation.input_checks import json_problem
from annotation.models import Project
from annotation.roles import Action, project_access
from jobs.lifecycle import append_lines, job_cancel
from jobs.queue import job_enqueue

from . import launch, placement, registry
from .models import DatasetSnapshot, ModelVersion, TrainingRun
from .snapshots import snapshot_precheck, storage_path

KINDS = tuple(TrainingRun.Kind.values)
SNAPSHOT_FORMAT = {
    TrainingRun.Kind.SFT: DatasetSnapshot.Format.SFT,
    TrainingRun.Kind.REWARD: DatasetSnapshot.Format.PREFERENCE,
    TrainingRun.Kind.DPO: DatasetSnapshot.Format.PREFERENCE,
    TrainingRun.Kind.RLHF: DatasetSnapshot.Format.PROMPTS,
}
# Which registered models a run of each kind may start from.
BASE_KINDS = {
    TrainingRun.Kind.SFT: {ModelVersion.Kind.BASE, ModelVersion.Kind.SFT, ModelVersion.Kind.POLICY},
    TrainingRun.Kind.REWARD: {ModelVersion.Kind.BASE, ModelVersion.Kind.SFT},
    TrainingRun.Kind.DPO: {ModelVersion.Kind.BASE, ModelVersion.Kind.SFT, ModelVersion.Kind.POLICY},
    TrainingRun.Kind.RLHF: {ModelVersion.Kind.BASE, ModelVersion.Kind.SFT, ModelVersion.Kind.POLICY},
}
OUTPUT_KIND = {
    TrainingRun.Kind.SFT: ModelVersion.Kind.SFT,
    TrainingRun.Kind.REWARD: ModelVersion.Kind.REWARD,
    TrainingRun.Kind.DPO: ModelVersion.Kind.POLICY,
    TrainingRun.Kind.RLHF: ModelVersion.Kind.POLICY,
}
RUN_TASK = "training.tasks.run_execute"


# Pipeline configs ---------------------------------------------------------------------------------
# A run's config is the pipeline dataclass's user-settable fields plus the platform's own options.
# Their ranges and choices live in the dataclasses' field metadata (training.pipelines.common.meta);
# this section only reads them, so the API, the form, the defaults endpoint and the schema agree.


def _pipelines_common():
    return importlib.import_module("training.pipelines.common")


@dataclasses.dataclass(kw_only=True)
class PlatformOptions:
    """Config keys the platform reads itself; they never reach the pipeline's dataclass."""

    num_gpus: int = dataclasses.field(default=1, metadata=_pipelines_common().meta(
        "GPUs for this run; more than 1 launches the pipeline with `accelerate launch`.", ge=1, le=64))
    executor: str = dataclasses.field(default="default", metadata=_pipelines_common().meta(
        "Where the pipeline runs: `default` (the gpu worker's setting), `local` (beside the gpu worker) or "
        "`ray` (a job on the Ray cluster; docs/ray.md).", choices=("default", "local", "ray")))
    num_workers: int = dataclasses.field(default=1, metadata=_pipelines_common().meta(
        "Data-parallel training processes of a run on the `ray` executor, placed across the cluster's nodes.",
        ge=1, le=64))

    # Several processes on one machine (training/launch.py, docs/distributed.md).
    distributed: str = dataclasses.field(default="ddp", metadata=_pipelines_common().meta(
        "How several processes share the model: ddp (a full copy each), zero2 / zero3 (DeepSpeed ZeRO: "
        "optimizer state and gradients, or the weights too, sharded) or fsdp (PyTorch FSDP, all sharded). "
        "zero2, zero3 and fsdp need num_gpus > 1.", choices=launch.STRATEGIES))
    cpu_processes: int = dataclasses.field(default=1, metadata=_pipelines_common().meta(
        "Processes on the CPU, for machines without GPUs and for tests; more than 1 runs DDP over gloo "
        "with `accelerate launch`. The global batch is batch_size x processes x gradient_accumulation_steps.",
        ge=1, le=64))

    def validate(self) -> None:
        """The rules between the launch options (each field's range is in its metadata)."""
        ConfigError = _pipelines_common().ConfigError
        if self.cpu_processes > 1 and self.num_gpus > 1:
            raise ConfigError("cpu_processes", "a run uses GPUs (num_gpus) or CPU processes, not both; "
                                               "leave one of them at 1")
        if self.distributed in launch.SHARDED and self.cpu_processes > 1:
            raise ConfigError("distributed", f"{self.distributed} needs GPUs; CPU processes run ddp (over gloo)")
        if self.distributed in launch.SHARDED and self.num_gpus < 2:
            raise ConfigError("distributed", f"{self.distributed} shards the model across processes, so it needs "
                                             "num_gpus > 1; one GPU runs without it")


PLATFORM_OPTIONS = {f.name: f.metadata["help"] for f in dataclasses.fields(PlatformOptions)}


def pipeline_config_class(*, kind: str) -> type:
    """The @dataclass config of training.pipelines.<kind> (cheap: the pipelines import torch lazily)."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}.", field="kind")
    module = importlib.import_module(f"training.pipelines.{kind}")
    common = _pipelines_common()
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__
        and issubclass(obj, common.CommonConfig)
    ]
    if len(found) != 1:
        raise RuntimeError(f"training.pipelines.{kind} must define exactly one config dataclass, found {found}")
    return found[0]


def is_platform_field(name: str) -> bool:
    """Paths (model_path, train_file, prompts_file, output_dir, reward_model_path, ...) are the platform's."""
    return name.endswith(("_path", "_file", "_dir"))


def pipeline_fields(*, kind: str) -> dict[str, dict]:
    """The user-settable fields of a kind's config, the platform's options last.

    {name: {default, type, help, nullable[, choices][, min, max, exclusive_min, exclusive_max, also,
    max_items, bounds]}}, where `bounds` says the allowed values in words.
    """
    common = _pipelines_common()
    specs = {**common.config_fields(pipeline_config_class(kind=kind)), **common.config_fields(PlatformOptions)}
    return {
        name: {key: value for key, value in spec.items() if key != "required"}
        for name, spec in specs.items()
        if not is_platform_field(name)
    }


def _platform_placeholders(cls) -> dict:
    return {f.name: "/platform" for f in dataclasses.fields(cls) if f.init and is_platform_field(f.name)}


def run_config_validate(*, kind: str, config) -> dict:
    """Check a user's run config against the pipeline's dataclass. Returns the cleaned user config.

    Every ConfigError becomes a 400 naming `config.<field>`, so nothing is queued for a config
    that the worker would refuse.
    """
    cls = pipeline_config_class(kind=kind)
    if not isinstance(config, dict):
        raise InvalidInput("config must be a JSON object.", field="config")
    # The API's parser has checked its body already; the page's form and the CLI parse their own JSON.
    problem = json_problem(config, root=("config",))
    if problem is not None:
        raise InvalidInput(problem.message, field=problem.field)
    user = dict(config)
    platform: dict = {}
    for name in list(user):
        if name in PLATFORM_OPTIONS:
            platform[name] = user.pop(name)
        elif is_platform_field(str(name)):
            raise InvalidInput(
                f"config.{name} is set by the platform (the snapshot, the models and the run directory).",
                field=f"config.{name}",
            )
    common = _pipelines_common()
    try:
        options = common.config_from_dict(PlatformOptions, platform)
        cfg = common.config_from_dict(cls, {**user, **_platform_placeholders(cls)})
    except common.ConfigError as exc:
        raise InvalidInput(f"config.{exc.field}: {exc.message}.", field=f"config.{exc.field}") from None
    _preset_check(cls, user)
    cleaned = {name: getattr(cfg, name) for name in user}
    cleaned.update({name: getattr(options, name) for name in platform})
    return cleaned


def _preset_check(cls, user: dict) -> None:
    """The config with its preset's values under it must pass too (auto: with every size it may pick),
    so a rule between fields (rlhf's batch and group size) is refused now, not on the worker."""
    presets = importlib.import_module("training.pipelines.presets")
    preset = user.get("preset", "none")
    sizes = presets.SIZES if preset == "auto" else (preset,) if preset in presets.PRESETS else ()
    common = _pipelines_common()
    for size in sizes:
        try:
            common.config_from_dict(cls, common.config_with_preset(cls, {
                **user, "preset": size, **_platform_placeholders(cls)}))
        except common.ConfigError as exc:
            raise InvalidInput(f"config.{exc.field}: {exc.message} (with the {size} preset's values).",
                               field=f"config.{exc.field}") from None


def run_data_validate(*, kind: str, data) -> ExportFilters:
    """A run's `data` section: the quality filters its snapshot is taken with (annotation/export_filters.py).

    Errors name `data.<filter>`. An rlhf run trains on prompts, so it takes none; consensus and
    ties are about preference pairs, so an sft run takes neither.
    """
    if data is None:
        return ExportFilters()
    if not isinstance(data, dict):
        raise InvalidInput("data must be a JSON object of quality filters.", field="data")
    filters = ExportFilters.from_mapping(data, strict=True, prefix="data.")
    if filters and kind == TrainingRun.Kind.RLHF:
        raise InvalidInput("An rlhf run trains on prompts: the data filters apply to sft, reward and dpo runs.",
                           field="data")
    for name in ("consensus", "ties"):
        if getattr(filters, name) and kind == TrainingRun.Kind.SFT:
            raise InvalidInput(f"data.{name} applies to preference pairs: reward and dpo runs.", field=f"data.{name}")
    if filters.since_last_export:
        raise InvalidInput("data.since_last_export is for exports; give a run a `since` date instead.",
                           field="data.since_last_export")
    return filters


def run_data_error(error: InvalidInput) -> InvalidInput:
    """An export's error about a filter, renamed to the run's `data.<filter>`."""
    names = {f.name for f in dataclasses.fields(ExportFilters)}
    if error.field in names:
        return InvalidInput(error.message, field=f"data.{error.field}")
    if error.field == "filters":
        return InvalidInput(error.message, field="data")
    return error


def run_config_problems(*, kind: str, config: dict) -> dict[str, str]:
    """{field: message} for every problem of a user's run config at once (the page shows them all).

    run_config_validate stays the guard (first problem, as a 400); this only reads.
    """
    cls = pipeline_config_class(kind=kind)
    if not isinstance(config, dict):
        return {"config": "config must be a JSON object."}
    user = {name: value for name, value in config.items() if name not in PLATFORM_OPTIONS}
    common = _pipelines_common()
    problems = {}
    for exc in common.config_problems(cls, {**user, **_platform_placeholders(cls)}):
        problems.setdefault(exc.field, exc.message)
    platform = {name: value for name, value in config.items() if name in PLATFORM_OPTIONS}
    for exc in common.config_problems(PlatformOptions, platform):
        problems.setdefault(exc.field, exc.message)
    return problems


# Model registry ----------------------------------------------------------------------------------


BASE_MODEL_PIPELINE = "training.pipelines.base_model"  # the module that builds the tiny base model


def _base_model_build(command: list[str], *, on_progress: Callable[[dict], None] | None) -> str | None:
    """Run the tiny model's build, passing its JSON progress events to on_progress.

    Returns None when it succeeded, else the reason: its exit status and the last line it wrote.
    """
    last = ""
    with subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=pipeline_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        for line in process.stdout:
            event = None
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    pass
            if isinstance(event, dict):
                if event.get("event") == "progress" and on_progress is not None:
                    on_progress(event)
            elif line.strip():
                last = line.strip()
    if process.returncode == 0:
        return None
    return f"exit status {process.returncode}" + (f": {last[-300:]}" if last else "")


def base_model_bootstrap(*, max_steps: int | None = None, force: bool = False, full: bool = False,
                         on_progress: Callable[[dict], None] | None = None) -> ModelVersion:
    """Register settings.BASE_MODEL. For `tiny`, build it first (a subprocess) into STORAGE_ROOT/models/tiny.

    The build stops after its time budget (about 100 s) even when its steps are not done, so a loaded
    machine gets a usable model in bounded time. `full=True` runs every step whatever it takes, and
    rebuilds a tiny model that an earlier, capped build left short of its steps: experiments that must
    repeat (the full loop) want the same base model on any machine.
    `on_progress` gets each of the build's progress events ({"step", "total", "metrics"}) as it happens.
    """
    wanted = settings.BASE_MODEL
    if wanted != "tiny":
        existing = ModelVersion.objects.filter(name=wanted).first()
        if existing is not None:
            return existing
        return registry.model_register_setting(name=wanted, path=wanted)
    relative = Path("models") / "tiny"
    folder = storage_path(relative)
    if full and (folder / "config.json").exists():
        built = _read_metrics(folder)
        force = force or built.get("steps", 0) < built.get("max_steps", max_steps or 600)
    if force or not (folder / "config.json").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", BASE_MODEL_PIPELINE, "--output", str(folder)]
        if max_steps is not None:
            command += ["--max-steps", str(max_steps)]
        if full:
            command += ["--seconds", "0"]
        failure = _base_model_build(command, on_progress=on_progress)
        if failure is not None:
            raise RuntimeError(f"Building the tiny base model failed ({failure}).")
    metrics = _read_metrics(folder)
    model, _ = ModelVersion.objects.update_or_create(
        name="tiny", defaults={
            "kind": ModelVersion.Kind.BASE, "path": relative.as_posix(), "source": ModelVersion.Source.STORAGE,
            "project": None, "metrics": metrics,
        },
    )
    return model


def _read_metrics(folder: Path) -> dict:
    try:
        data = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pipeline_env() -> dict:
    """The environment of a pipeline subprocess: offline hub, the repository importable, the worker's GPUs."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.BASE_DIR), env.get("PYTHONPATH", "")]))
    from . import capacity

    owned = capacity.owned_gpu_ids()
    if owned is not None:  # the worker's own GPUs (FEEDBACKLOOP_GPU_IDS), and only those
        env["CUDA_VISIBLE_DEVICES"] = ",".join(owned)
    return env


# Starting and cancelling runs --------------------------------------------------------------------


def run_create(
    *, kind: str, project: Project, base_model: ModelVersion, reward_model: ModelVersion | None = None,
    config: dict, created_by: AbstractBaseUser, data: dict | None = None,
) -> TrainingRun:
    """Validate, create the queued run and enqueue it once the transaction commits.

    `data` holds the quality filters of the run's snapshot (run_data_validate), recorded on the run.
    The snapshot itself is frozen by the worker before it trains (run_snapshot_freeze), so this
    answers at once at any project size; a snapshot that would surely be empty is refused here.
    """
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}.", field="kind")
    if created_by is not None:
        project_access(user=created_by, project_id=project.pk, action=Action.TRAIN)
    registry.model_check(base_model, project=project, field="base_model")
    if reward_model is not None:
        registry.model_check(reward_model, project=project, field="reward_model")
    if base_model.kind not in BASE_KINDS[kind]:
        allowed = ", ".join(sorted(BASE_KINDS[kind]))
        raise InvalidInput(
            f"A {kind} run starts from a model of kind {allowed}, not {base_model.kind}.", field="base_model"
        )
    if kind == TrainingRun.Kind.RLHF:
        if reward_model is None:
            raise InvalidInput("An rlhf run needs a reward model.", field="reward_model")
        if reward_model.kind != ModelVersion.Kind.REWARD:
            raise InvalidInput(f"reward_model must be of kind reward, not {reward_model.kind}.", field="reward_model")
    elif reward_model is not None:
        raise InvalidInput(f"A {kind} run takes no reward model.", field="reward_model")
    cleaned = run_config_validate(kind=kind, config=config)
    filters = run_data_validate(kind=kind, data=data)
    gpus_check(cleaned.get("num_gpus", 1))
    placement.placement_check(config=cleaned)
    registry.model_files_check(base_model, field="base_model")
    if reward_model is not None:
        registry.model_files_check(reward_model, field="reward_model")
    try:
        snapshot_precheck(project=project, format=SNAPSHOT_FORMAT[kind], filters=filters)
    except InvalidInput as error:
        raise run_data_error(error) from None
    with transaction.atomic():
        run = TrainingRun.objects.create(
            kind=kind, project=project, base_model=base_model, reward_model=reward_model,
            data_filters=filters.as_dict(), config=cleaned, created_by=created_by,
        )
        run.checkpoint_dir = f"runs/{run.pk}"
        run.save(update_fields=["checkpoint_dir", "updated_at"])
        transaction.on_commit(lambda: run_enqueue(run_id=run.pk))
    return run


def gpus_check(gpus: int) -> None:
    """More GPUs than any gpu worker has is a 400 now, not a run that waits or trains on fewer (training/capacity.py)."""
    from . import capacity

    most = capacity.gpu_capacity_max()
    if gpus > 1 and most is not None and gpus > most:
        raise InvalidInput(
            f"config.num_gpus is {gpus}, but the largest gpu worker has {most} GPU{'' if most == 1 else 's'}.",
            field="config.num_gpus",
        )


RESUMABLE = (TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED)


def run_resume(*, run: TrainingRun, by: AbstractBaseUser | None) -> TrainingRun:
    """Queue a failed or cancelled run again: its pipeline resumes from the last intact checkpoint.

    The run keeps its id, its metric history up to that checkpoint and its log, with a line that
    says who resumed it. Anything but a failed or cancelled run is a conflict.
    """
    if by is not None:
        project_access(user=by, project_id=run.project_id, action=Action.TRAIN)
    registry.model_files_check(run.base_model, field="base_model")
    if run.reward_model is not None:
        registry.model_files_check(run.reward_model, field="reward_model")
    who = by.get_username() if by is not None else "the operator"
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.status not in RESUMABLE:
            raise Conflict(f"Only a failed or cancelled run can be resumed; this one is {locked.status}.", field="status")
        now = timezone.now()
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRun.Status.QUEUED, error="", finished_at=None, worker="", pipeline_pid=None,
            heartbeat_at=None, updated_at=now,
            log_tail=append_lines(locked.log_tail, [f"[platform] resumed by {who}, from its last checkpoint"]),
        )
        transaction.on_commit(lambda: run_enqueue(run_id=run.pk))
    run.refresh_from_db()
    return run


def run_retry(*, run: TrainingRun, created_by: AbstractBaseUser | None) -> TrainingRun:
    """A new run from scratch with the same kind, models, config and frozen snapshot; the old one stays as it was."""
    if created_by is not None:
        project_access(user=created_by, project_id=run.project_id, action=Action.TRAIN)
    if run.status not in RESUMABLE:
        raise Conflict(f"Only a failed or cancelled run can be retried; this one is {run.status}.", field="status")
    registry.model_check(run.base_model, project=run.project, field="base_model")
    registry.model_files_check(run.base_model, field="base_model")
    if run.reward_model is not None:
        registry.model_check(run.reward_model, project=run.project, field="reward_model")
        registry.model_files_check(run.reward_model, field="reward_model")
    with transaction.atomic():
        retry = TrainingRun.objects.create(
            kind=run.kind, project=run.project, base_model=run.base_model, reward_model=run.reward_model,
            snapshot=run.snapshot, data_filters=run.data_filters, config=run.config, created_by=created_by,
            log_tail=f"[platform] a retry of run {run.pk}, from scratch on the same snapshot",
        )
        retry.checkpoint_dir = f"runs/{retry.pk}"
        retry.save(update_fields=["checkpoint_dir", "updated_at"])
        transaction.on_commit(lambda: run_enqueue(run_id=retry.pk))
    return retry


def run_enqueue(*, run_id: int) -> None:
    """Queue the run's gpu task (training.tasks.run_execute), by its pinned name."""
    job_enqueue(task_name=RUN_TASK, args=[run_id])


def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one becomes cancelling and its worker stops it."""
    return job_cancel(model=TrainingRun, pk=run.pk, noun="run")
