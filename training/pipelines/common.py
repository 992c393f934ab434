"""Shared plumbing for the training pipelines: configs, device, progress, checkpoints, saving.

Pure Python at import time: torch, transformers and peft are imported inside the functions
that need them, so the web app can import this module (and the config dataclasses of every
pipeline) to validate a run config without loading the ML stack. Never imports Django.

Progress protocol (stdout, one JSON object per line, flushed):
    {"event": "start", "kind": "sft", "step": 0, "total": 100, "resumed_from": null, "device": "cpu", "bf16": false,
     "world_size": 1}
    {"event": "progress", "step": 3, "total": 100, "metrics": {"loss": 1.23, "learning_rate": 0.001}}
    {"event": "done", "step": 100, "metrics": {...}, "model_dir": ".../model"}
    {"event": "error", "message": "..."}            (on failure; the exit status is non-zero)
The done event's step is the optimizer steps the model has had; the platform fails a run at 0.
Under `accelerate launch` (several processes) only rank 0 prints events and writes metrics.json,
pipeline_config.json and the model; world_size says how many processes train together.
Anything else on stdout (library warnings) is not JSON and can be ignored by the reader.

Output layout of every pipeline run:
    <output_dir>/checkpoint-<step>/     resumable Trainer checkpoints (+ pipeline_config.json)
    <output_dir>/model/                 final model + tokenizer (LoRA merged), from_pretrained-ready
    <output_dir>/metrics.json           final metrics
    <output_dir>/pipeline_config.json   the config of the run
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from training.pipelines.presets import PRESET_NAMES, PresetError, with_preset


class ConfigError(ValueError):
    """A config value that a pipeline cannot accept. `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------------------------
# Field metadata: each field's range or choices, written once beside it
#
# TRL's convention, `field(default=..., metadata={"help": ..., "choices": [...]})`, plus a range:
#     "min" / "max"                    inclusive bounds of a number
#     "exclusive_min" / "exclusive_max"  true when the bound itself is not allowed
#     "also"                           values allowed outside the range (max_steps: -1)
#     "max_items"                      the longest list
# config_from_dict enforces them; the web app's validator, the new-run form, the defaults
# endpoint and the OpenAPI schema read them through config_fields(). Null passes the bounds
# of a field whose type allows null.

MAX_STEPS = 1_000_000  # optimizer steps: days of training even for a small model
MAX_BATCH = 1024
MAX_TOKENS = 131_072  # the longest context of today's open models
SEED_MAX = 2**32 - 1  # numpy's seed range, which transformers.set_seed feeds
# Schedulers that TrainingArguments builds from the name alone. Not offered: reduce_lr_on_plateau
# and greedy (they need an eval strategy; our pipelines train without one), cosine_with_min_lr,
# cosine_warmup_with_min_lr and warmup_stable_decay (they need lr_scheduler_kwargs we do not pass).
# Experiment trackers a run may also report to (transformers' report_to). Their files go to the
# run's trackers/<name>/ folder; wandb runs offline unless the worker's WANDB_MODE says otherwise.
TRACKERS = ("none", "tensorboard", "trackio", "wandb")
TRACKER_MODULES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt")
POLYNOMIAL_LR_END = 1e-7  # transformers' polynomial decay ends here and needs a larger peak


def meta(help: str, *, ge=None, gt=None, le=None, lt=None, also=(), choices=None, max_items=None) -> dict:
    """Field metadata: help plus a range (ge/gt, le/lt), extra allowed values, choices or a list length.

        max_steps: int = field(default=-1, metadata=meta("Optimizer steps.", ge=1, le=MAX_STEPS, also=(-1,)))
    """
    if ge is not None and gt is not None or le is not None and lt is not None:
        raise TypeError("give one lower and one upper bound")
    data: dict = {"help": help}
    low, high = (ge if gt is None else gt), (le if lt is None else lt)
    if low is not None:
        data["min"] = low
        if gt is not None:
            data["exclusive_min"] = True
    if high is not None:
        data["max"] = high
        if lt is not None:
            data["exclusive_max"] = True
    if low is not None and high is not None and not low < high:
        raise TypeError(f"empty range {low}..{high}")
    if also:
        data["also"] = list(also)
    if choices is not None:
        data["choices"] = list(choices)
    if max_items is not None:
        data["max_items"] = max_items
    return data


def _number_text(value) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def bounds_text(spec: dict) -> str:
    """The allowed values of a field in words: "from 1 to 1024", "> 0 and <= 1", "one of a, b", ..."""
    if spec.get("choices"):
        return "one of " + ", ".join(str(choice) for choice in spec["choices"])
    parts = []
    if "min" in spec:
        parts.append(("> " if spec.get("exclusive_min") else ">= ") + _number_text(spec["min"]))
    if "max" in spec:
        parts.append(("< " if spec.get("exclusive_max") else "<= ") + _number_text(spec["max"]))
    if "min" in spec and "max" in spec and not spec.get("exclusive_min") and not spec.get("exclusive_max"):
        text = f"from {_number_text(spec['min'])} to {_number_text(spec['max'])}"
    else:
        text = " and ".join(parts)
    if spec.get("also"):
        text = ", ".join(_number_text(v) for v in spec["also"]) + (", or " + text if text else "")
    if spec.get("max_items") is not None:
        text = (text + "; " if text else "") + f"at most {spec['max_items']} items"
    return text


def _shown(value, limit: int = 40) -> str:
    """A value for an error message, cut short: a body may hold a number of 10,000 digits."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = _number_text(value) if number else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _in_bounds(value, spec: dict) -> bool:
    if value in spec.get("also", ()) and not isinstance(value, bool):
        return True
    if spec.get("choices") is not None:
        return value in spec["choices"]
    if "min" in spec and not (value > spec["min"] if spec.get("exclusive_min") else value >= spec["min"]):
        return False
    if "max" in spec and not (value < spec["max"] if spec.get("exclusive_max") else value <= spec["max"]):
        return False
    return True  # written as "not in range" tests, so NaN fails every bound


def check_bounds(name: str, value, spec: dict) -> None:
    """Raise ConfigError(name, ...) when value breaks the range, choices or length in spec."""
    if value is None:
        return
    if isinstance(value, list):
        if spec.get("max_items") is not None and len(value) > spec["max_items"]:
            raise ConfigError(name, f"must have at most {spec['max_items']} items, got {len(value)}")
        return
    if not _in_bounds(value, spec):
        raise ConfigError(name, f"must be {bounds_text(spec)}; got {_shown(value)}")


BOUND_KEYS = ("choices", "min", "max", "exclusive_min", "exclusive_max", "also", "max_items")


def _type_kind(tp) -> str:
    """The JSON-ish type name of a field: int, float, bool, str, list or json (null is `nullable`)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return _type_kind(args[0])
    if typing.get_origin(tp) is typing.Literal:
        return "str"
    if typing.get_origin(tp) is list:
        return "list"
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(tp, "json")


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def config_fields(cls) -> dict[str, dict]:
    """Every init field of a config dataclass as {name: {type, nullable, required, default, help, bounds...}}.

    The one reading of the metadata: the validator, the form, the defaults endpoint and the
    OpenAPI schema all start from it. A Literal type counts as choices.
    """
    hints = typing.get_type_hints(cls)
    out: dict[str, dict] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        spec = {
            "type": _type_kind(tp),
            "nullable": type(None) in typing.get_args(tp),
            "required": f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            "default": _default(f),
            "help": f.metadata.get("help", ""),
        }
        spec.update({key: f.metadata[key] for key in BOUND_KEYS if key in f.metadata})
        if typing.get_origin(tp) is typing.Literal and "choices" not in spec:
            spec["choices"] = list(typing.get_args(tp))
        if any(key in spec for key in BOUND_KEYS):
            spec["bounds"] = bounds_text(spec)
        out[f.name] = spec
    return out


# ---------------------------------------------------------------------------------------------
# Config dataclasses and their validation


@dataclass(kw_only=True)
class CommonConfig:
    """Fields every training pipeline shares. Subclasses add their data files and knobs."""

    model_path: str = field(metadata={"help": "Model directory (or hub id) to start from."})
    output_dir: str = field(metadata={"help": "Run directory: checkpoints, model/, metrics.json."})
    max_steps: int = field(default=-1, metadata=meta(
        "Optimizer steps; -1 means use num_train_epochs.", ge=1, le=MAX_STEPS, also=(-1,)))
    num_train_epochs: float = field(default=1.0, metadata=meta(
        "Epochs when max_steps is -1 (fractions allowed).", gt=0, le=1000))
    learning_rate: float = field(default=5e-5, metadata=meta("Peak learning rate.", gt=0, le=1))
    lr_scheduler_type: str = field(default="linear", metadata=meta(
        "transformers learning-rate schedule after warmup.", choices=LR_SCHEDULERS))
    warmup_steps: int = field(default=0, metadata=meta("Linear warmup steps.", ge=0, le=MAX_STEPS))
    weight_decay: float = field(default=0.0, metadata=meta("AdamW weight decay.", ge=0, le=1))
    batch_size: int = field(default=8, metadata=meta(
        "Per-device (per-process) train batch size; the global batch is batch_size x processes x "
        "gradient_accumulation_steps.", ge=1, le=MAX_BATCH))
    gradient_accumulation_steps: int = field(default=1, metadata=meta(
        "Micro-batches per optimizer step.", ge=1, le=MAX_BATCH))
    max_length: int = field(default=256, metadata=meta(
        "Max tokens per example (truncated beyond).", ge=8, le=MAX_TOKENS))
    seed: int = field(default=42, metadata=meta(
        "Random seed (model init, data order, sampling).", ge=0, le=SEED_MAX))
    logging_steps: int = field(default=10, metadata=meta("Report progress every N steps.", ge=1, le=MAX_STEPS))
    save_steps: int = field(default=500, metadata=meta(
        "Save a resumable checkpoint every N steps.", ge=1, le=MAX_STEPS))
    save_total_limit: int | None = field(default=2, metadata=meta(
        "Keep at most N checkpoints (null: all).", ge=1, le=1000))
    resume: bool = field(default=True, metadata={"help": "Resume from the last checkpoint-* in output_dir."})
    lora_r: int = field(default=0, metadata=meta("LoRA rank; 0 trains all weights.", ge=0, le=1024))
    lora_alpha: int = field(default=16, metadata=meta("LoRA alpha (the update is scaled by alpha / r).",
                                                      ge=1, le=4096))
    lora_dropout: float = field(default=0.0, metadata=meta("LoRA dropout.", ge=0, lt=1))
    lora_target_modules: list[str] | None = field(
        default=None, metadata=meta("Modules to adapt; null means all linear layers.", max_items=64))
    bf16: bool | None = field(default=None, metadata={"help": "bf16 mixed precision; null: where supported."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Trade compute for memory."})
    load_in_4bit: bool = field(default=False, metadata={"help": (
        "QLoRA: load the frozen base weights in 4-bit NF4 (bitsandbytes, CUDA GPUs only); needs lora_r > 0.")})
    preset: str = field(default="none", metadata=meta(
        "Settings by model size (LoRA, gradient checkpointing, batch and accumulation), applied under the "
        "fields you set: auto picks by the base model's parameter count.", choices=PRESET_NAMES))
    report_to: str = field(default="none", metadata=meta(
        "Experiment tracker that also receives the metrics; its files go to the run's trackers/ folder "
        "(wandb offline). The platform's own charts work whatever is chosen.", choices=TRACKERS))

    def validate(self) -> None:
        """Rules between fields (each field's own range is in its metadata). Subclasses extend it."""
        if self.load_in_4bit and self.lora_r <= 0:
            raise ConfigError("load_in_4bit", "4-bit base weights are frozen: set lora_r > 0 (QLoRA) or a preset")
        if self.report_to != "none" and not tracker_installed(self.report_to):
            raise ConfigError("report_to", f"{self.report_to} is not installed on this platform; "
                                           f"choose one of {', '.join(t for t in TRACKERS if tracker_installed(t))}")
        if self.lr_scheduler_type == "polynomial" and not self.learning_rate > POLYNOMIAL_LR_END:
            raise ConfigError("learning_rate", f"must be > {POLYNOMIAL_LR_END:g} with the polynomial schedule, "
                                               f"which decays to {POLYNOMIAL_LR_END:g}")


def redefault(name: str, default, help: str | None = None):
    """A CommonConfig field declared again with another default (and help), keeping its range."""
    base = CommonConfig.__dataclass_fields__[name]
    return field(default=default, metadata={**base.metadata, **({"help": help} if help else {})})


def _type_ok(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(tp) or (typing.Any,)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return isinstance(value, tp)


def _type_name(tp) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp)) if typing.get_origin(tp) is None else str(tp)


def config_from_dict(cls, data: dict):
    """Build config dataclass `cls` from a JSON-like dict, raising ConfigError(field, message).

    In order: unknown names, then each field's type and its metadata's range or choices, then
    the dataclass's validate() for the rules between fields.
    """
    if not isinstance(data, dict):
        raise ConfigError("config", f"expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    specs = config_fields(cls)
    for name in data:
        if name not in specs:
            close = [f for f in specs if f.replace("_", "") == str(name).replace("_", "")]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(str(name), f"unknown field for {cls.__name__}{hint}")
    kwargs = {}
    for name, spec in specs.items():
        if name not in data:
            if spec["required"]:
                raise ConfigError(name, "required field is missing")
            continue
        kwargs[name] = _field_value(name, data[name], spec, hints[name])
    cfg = cls(**kwargs)
    check = getattr(cfg, "validate", None)
    if check is not None:
        check()
    return cfg


def _field_value(name: str, value, spec: dict, hint):
    """One field's value as the dataclass takes it, after its type and range checks (ConfigError)."""
    if not _type_ok(value, hint):
        raise ConfigError(name, f"expected {_type_name(hint)}, got {type(value).__name__} {_shown(value)}")
    check_bounds(name, value, spec)  # before float(): an int too large for a float is out of range
    if spec["type"] == "float" and isinstance(value, int):
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(name, f"{_shown(value)} is too large for a float") from None
    return value


def config_problems(cls, data: dict) -> list[ConfigError]:
    """Every problem of a config at once, for a form that shows them all: each unknown name and each
    missing, mistyped or out-of-range field; the rules between fields (validate()) once those are fine."""
    if not isinstance(data, dict):
        return [ConfigError("config", f"expected a JSON object, got {type(data).__name__}")]
    hints = typing.get_type_hints(cls)
    specs = config_fields(cls)
    problems = []
    for name in data:
        if name not in specs:
            close = [f for f in specs if f.replace("_", "") == str(name).replace("_", "")]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(ConfigError(str(name), f"unknown field for {cls.__name__}{hint}"))
    for name, spec in specs.items():
        try:
            if name in data:
                _field_value(name, data[name], spec, hints[name])
            elif spec["required"]:
                raise ConfigError(name, "required field is missing")
        except ConfigError as exc:
            problems.append(exc)
    if not problems:
        try:
            config_from_dict(cls, data)
        except ConfigError as exc:
            problems.append(exc)
    return problems


CONFIG_CLASSES = {
    "sft": ("training.pipelines.sft", "SftPipelineConfig"),
    "reward": ("training.pipelines.reward", "RewardPipelineConfig"),
    "rlhf": ("training.pipelines.rlhf", "RlhfPipelineConfig"),
    "dpo": ("training.pipelines.dpo", "DpoPipelineConfig"),
    "generate": ("training.pipelines.generate", "GeneratePipelineConfig"),
    "score": ("training.pipelines.score", "ScorePipelineConfig"),
}


def config_class(kind: str):
    """The config dataclass of a pipeline kind (sft, reward, rlhf, dpo, generate); imports no ML code."""
    import importlib

    if kind not in CONFIG_CLASSES:
        raise ConfigError("kind", f"unknown pipeline {kind!r}; expected one of {', '.join(CONFIG_CLASSES)}")
    module, name = CONFIG_CLASSES[kind]
    return getattr(importlib.import_module(module), name)


def validate_config(kind: str, data: dict):
    """config_from_dict for a pipeline kind: what the web app calls before queueing a run."""
    return config_from_dict(config_class(kind), data)


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def load_config(cls, path: str | os.PathLike):
    """A pipeline's config file as its dataclass, its preset's values laid under the explicit fields."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid JSON: {exc}") from None
    return config_from_dict(cls, config_with_preset(cls, data))


def config_with_preset(cls, data):
    """`data` with the values of its preset (presets.py) under its own: what the pipeline runs with.

    auto reads the size of data["model_path"]; the fields a preset sets but `cls` lacks are left out.
    """
    if not isinstance(data, dict) or "preset" not in config_fields(cls):
        return data
    try:
        return with_preset(data, set(config_fields(cls)))
    except PresetError as exc:
        raise ConfigError(exc.field, exc.message) from None


# ---------------------------------------------------------------------------------------------
# Device


def pick_device() -> str:
    """cuda, then mps, then cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def bf16_supported(device: str) -> bool:
    import torch

    return device == "cuda" and torch.cuda.is_bf16_supported()


def use_bf16(cfg, device: str) -> bool:
    """The run's bf16: its own setting, or (null) where the device supports it.

    Under `accelerate launch --mixed_precision bf16` (several GPUs, bf16 left null) the ranks must
    train in bf16 too: on a device without it that is an error naming the field, not a silent mismatch.
    """
    if cfg.bf16 is None:
        if os.environ.get("ACCELERATE_MIXED_PRECISION") == "bf16" and not bf16_supported(device):
            raise ConfigError("bf16", f"the launcher runs bf16, which {device} does not support; set bf16 to false")
        return bf16_supported(device)
    if cfg.bf16 and not bf16_supported(device):
        raise ConfigError("bf16", f"bf16 is not supported on {device}")
    return cfg.bf16


# ---------------------------------------------------------------------------------------------
# Progress


def rank() -> int:
    """This process's rank under `accelerate launch` (torch's elastic launcher sets RANK); 0 alone."""
    return int(os.environ.get("RANK", "0"))


def die_with_launcher() -> None:
    """Linux: a rank gets SIGKILL when its launcher dies.

    torch's elastic launcher starts every rank in a session of its own, so a launcher killed
    outright (the worker's SIGKILL after a cancel's grace period, or the worker itself dying)
    would leave the ranks training on. The launcher's SIGTERM it forwards to them itself.
    """
    if "LOCAL_RANK" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the launcher died before prctl took effect
        os._exit(137)


def emit(event: str, **payload) -> None:
    """Print one progress event as a JSON line, flushed. Only the main process (rank 0) prints."""
    if rank() != 0:
        return
    line = json.dumps({"event": event, **_clean(payload)}, allow_nan=False)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _clean(value):
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def numeric_metrics(logs: dict) -> dict:
    return {k: v for k, v in _clean(logs).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def progress_callback(kind: str, cfg, device: str, bf16: bool, resumed_from: str | None):
    """A transformers TrainerCallback that prints start/progress events (done is printed by finish()).

    It keeps the logged metrics in `.history`, and writes pipeline_config.json into every
    checkpoint, so a checkpoint says how it was made.
    """
    from transformers import TrainerCallback

    class JsonLinesProgress(TrainerCallback):
        def __init__(self):
            self.history: list[dict] = []

        def on_train_begin(self, args, state, control, **kwargs):
            emit("start", kind=kind, step=state.global_step, total=state.max_steps,
                 resumed_from=resumed_from, device=device, bf16=bf16, world_size=args.world_size)

        def on_log(self, args, state, control, logs=None, **kwargs):
            metrics = numeric_metrics(logs or {})
            self.history.append({"step": state.global_step, **metrics})
            emit("progress", step=state.global_step, total=state.max_steps, metrics=metrics)

        def on_save(self, args, state, control, **kwargs):
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir() and state.is_world_process_zero:
                (ckpt / "pipeline_config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))

    return JsonLinesProgress()


# ---------------------------------------------------------------------------------------------
# Trainer plumbing


def checkpoint_damage(path: str | os.PathLike) -> str | None:
    """Why a checkpoint directory cannot be resumed from (a truncated or unreadable file), or None.

    A process killed while saving leaves a checkpoint whose last file is cut short; resuming from it
    crashes every retry. Each check only reads headers: safetensors validates its own header and
    length (safetensors library), torch's .pt/.bin files are zip archives whose directory sits at the
    end, and the trainer state must parse.
    """
    import zipfile

    folder = Path(path)
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError) as exc:
        return f"trainer_state.json: {exc}"
    for file in sorted(folder.iterdir()):
        try:
            if file.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(file), framework="numpy") as tensors:
                    list(tensors.keys())
            elif file.suffix in (".pt", ".bin", ".pth"):
                with zipfile.ZipFile(file):
                    pass
        except Exception as exc:  # noqa: BLE001 - any failure to read the header means damage
            return f"{file.name}: {exc}"
    return None


def last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint-<N> directory that is complete and intact, or None.

    A damaged one (see checkpoint_damage) is renamed damaged-checkpoint-<N>, kept for inspection,
    said in the log, and the one before it is used: losing a few steps beats failing every retry.
    """
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = []
    for path in root.iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if match and path.is_dir() and (path / "trainer_state.json").exists():
            found.append((int(match[1]), path))
    for step, path in sorted(found, reverse=True):
        damage = checkpoint_damage(path)
        if damage is None:
            return str(path)
        aside = path.with_name(f"damaged-{path.name}")
        print(f"[resume] {path.name} is damaged ({damage}); set aside as {aside.name}", flush=True)
        try:
            path.rename(aside)
        except OSError:
            pass  # another process moved it: it is out of the way either way
    return None


def tracker_installed(name: str) -> bool:
    if name == "none":
        return True
    import importlib.util

    return importlib.util.find_spec(TRACKER_MODULES[name]) is not None


def tracker_folder(output_dir: str, name: str) -> Path:
    return Path(output_dir) / "trackers" / name


def trackers_setup(cfg) -> list[str]:
    """transformers' report_to for cfg.report_to, its files pointed at the run's trackers/<name>/ folder.

    The trackers read where to write from the environment (tensorboard when its callback is made,
    trackio when it is imported), so this runs before the trainer is built, in the pipeline's process.
    """
    name = getattr(cfg, "report_to", "none")
    if name == "none":
        return []
    folder = tracker_folder(cfg.output_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "tensorboard": {"TENSORBOARD_LOGGING_DIR": str(folder)},
        "trackio": {"TRACKIO_DIR": str(folder)},
        "wandb": {"WANDB_DIR": str(folder), "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")},
    }[name])
    return [name]


def trainer_kwargs(cfg, device: str, bf16: bool) -> dict:
    """TrainingArguments keyword arguments shared by every pipeline (TRL configs subclass them)."""
    return dict(
        output_dir=cfg.output_dir,
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_train_epochs,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=trackers_setup(cfg),
        run_name=Path(cfg.output_dir).name,
        project="feedbackloop",
        disable_tqdm=True,
        bf16=bf16,
        use_cpu=device == "cpu",
        activation_checkpointing=cfg.gradient_checkpointing,
        dataloader_num_workers=0,
    )


def quiet(trainer):
    """Drop transformers' log printer: stdout carries only our JSON lines (and library noise on stderr)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def lora_config(cfg, task_type: str = "CAUSAL_LM"):
    """A peft LoraConfig when cfg.lora_r > 0, else None."""
    if cfg.lora_r <= 0:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules or "all-linear",
        task_type=task_type,
    )


def model_load_kwargs(cfg, device: str, bf16: bool) -> dict:
    """from_pretrained keyword arguments for the trained model: 4-bit for QLoRA, bf16 for a frozen LoRA base.

    Full fine-tuning keeps fp32 weights (mixed precision casts per operation). QLoRA needs
    bitsandbytes and a CUDA GPU: anything else is refused with a ConfigError naming load_in_4bit.
    """
    import torch

    if getattr(cfg, "load_in_4bit", False):
        import importlib.util

        if device != "cuda" or importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("load_in_4bit", f"QLoRA needs bitsandbytes and a CUDA GPU; this worker has "
                                              f"{'no bitsandbytes' if device == 'cuda' else 'no CUDA GPU'}")
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if bf16 else torch.float16
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute)
        return {"quantization_config": quantization, "dtype": compute,
                "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}}
    if cfg.lora_r > 0 and bf16:
        return {"dtype": torch.bfloat16}
    return {}


def prepare_run(cfg, kind: str):
    """Seed, pick device and precision, write the run config, find the checkpoint to resume."""
    from transformers import set_seed

    set_seed(cfg.seed)
    device = pick_device()
    bf16 = use_bf16(cfg, device)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if rank() == 0:
        (out / "pipeline_config.json").write_text(json.dumps({"kind": kind, **config_to_dict(cfg)}, indent=2))
    resume = last_checkpoint(out) if cfg.resume else None
    return device, bf16, resume


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def read_jsonl(path: str | os.PathLike, required: tuple[str, ...] = ()) -> list[dict]:
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from None
            missing = [k for k in required if k not in row]
            if missing:
                raise ValueError(f"{path}:{lineno}: missing {', '.join(missing)}")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def save_final(trainer, tokenizer, output_dir: str | os.PathLike) -> str:
    """Save the final model (LoRA merged into the weights) and tokenizer to <output_dir>/model.

    Every rank calls it. Under DDP each rank holds the whole model and the main process writes it;
    under DeepSpeed or FSDP (sharded weights) see _save_sharded.
    """
    model_dir = Path(output_dir) / "model"
    trainer.accelerator.wait_for_everyone()
    if getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False):
        return _save_sharded(trainer, tokenizer, model_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if trainer.accelerator.is_main_process:
        if hasattr(model, "merge_and_unload"):  # a peft model
            model = model.merge_and_unload()
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
    return str(model_dir)


def _save_sharded(trainer, tokenizer, model_dir: Path) -> str:
    """The final model of a DeepSpeed or FSDP run: the Trainer gathers the shards onto the main process.

    ZeRO-3 needs zero3_save_16bit_model and FSDP a FULL_STATE_DICT (training/accelerate/*.yaml). A
    LoRA run's adapter is saved beside it and merged on the main process into a fresh copy of the
    base model, since the sharded base weights cannot be merged in place.
    """
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    if not hasattr(unwrapped, "merge_and_unload"):
        trainer.save_model(str(model_dir))
    else:
        adapter_dir = model_dir.with_name("adapter")
        trainer.save_model(str(adapter_dir))
        if trainer.accelerator.is_main_process:
            from peft import PeftModel

            base_cls = type(unwrapped.get_base_model())
            base_path = unwrapped.peft_config["default"].base_model_name_or_path
            base = base_cls.from_pretrained(base_path, config=unwrapped.get_base_model().config)
            PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload().save_pretrained(model_dir)
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(model_dir)
    trainer.accelerator.wait_for_everyone()
    return str(model_dir)


def finish(output_dir: str | os.PathLike, metrics: dict, model_dir: str, *, step: int) -> dict:
    """Write metrics.json and print the done event, with the optimizer steps the model has had.

    The platform reads `step` to refuse a model that was never trained (0 steps).
    """
    metrics = numeric_metrics(metrics)
    if rank() == 0:
        (Path(output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False))
    emit("done", step=step, metrics=metrics, model_dir=model_dir)
    return metrics


def train(trainer_cls, *, kind: str, cfg, device: str, bf16: bool, resume: str | None, logged: list[str],
          first: tuple[str, ...] = (), lora_task: str = "CAUSAL_LM", **trainer_args):
    """Build a TRL trainer with the progress callback and LoRA config, train it (resuming), and
    return (trainer, metrics): the Trainer's own, the last logged value of each `logged` name,
    and `first_<name>` for each name in `first` (so the report shows how far a metric moved).
    """
    progress = progress_callback(kind, cfg, device, bf16, resume)
    trainer = trainer_cls(**trainer_args, peft_config=lora_config(cfg, lora_task), callbacks=[progress])
    quiet(trainer)
    result = trainer.train(resume_from_checkpoint=resume)
    metrics = dict(result.metrics)
    metrics.update(last_logged(progress.history, logged))
    for name in first:
        values = [entry[name] for entry in progress.history if name in entry]
        if values:
            metrics[f"first_{name}"] = values[0]
    return trainer, metrics


def last_logged(history: list[dict], names: list[str]) -> dict:
    """The most recent logged value of each metric name."""
    found = {}
    for entry in reversed(history):
        for name in names:
            if name not in found and name in entry:
                found[name] = entry[name]
    return found


# ---------------------------------------------------------------------------------------------
# CLI


def main(cls, run_fn, argv: list[str] | None = None) -> int:
    """`python -m training.pipelines.<kind> --config run.json`: load, validate, run, report."""
    parser = argparse.ArgumentParser(description=(cls.__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file with the fields of " + cls.__name__)
    args = parser.parse_args(argv)
    die_with_launcher()
    try:
        cfg = load_config(cls, args.config)
    except (ConfigError, OSError) as exc:
        emit("error", message=str(exc), field=getattr(exc, "field", None))
        return 2
    try:
        run_fn(cfg)
    except Exception as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        raise
    return 0
