"""Presets by model size, and the estimated memory per GPU of a training run.

A preset is a set of CommonConfig values that make a model of one size train on one common GPU:

    0.5b   about 0.5B parameters   LoRA, batch 4 x 4 accumulation          fits a 24 GB GPU
    1-3b   1B to 3B                LoRA, gradient checkpointing, 4 x 4     fits a 40 GB GPU
    7-8b   7B to 8B                LoRA, gradient checkpointing, 2 x 8     fits an 80 GB GPU

`auto` picks one by the parameter count of the base model, read from its config.json with no weights
loaded. A preset's values come first and the run's explicit fields are laid over them, so whatever a
user writes wins. Every preset keeps batch_size x gradient_accumulation_steps at 16, a multiple of
every group size RLOO/GRPO are usually run with. bf16 stays "where supported" (null); QLoRA is the
explicit `load_in_4bit` field, since it needs bitsandbytes and a CUDA GPU on the worker.

Full fine-tuning of a 7B model does not fit one 80 GB GPU (about 18 bytes per parameter for the
fp32 weights, gradients and Adam states); it goes through DeepSpeed ZeRO-3 across several GPUs,
which shards those states. The estimate says so.

The estimate (`memory_estimate`) adds up, per GPU, in bytes:
    weights      full: fp32 weights; LoRA: the frozen base in bf16 (fp32 without bf16); QLoRA: 4-bit
                 linear layers, bf16 embeddings
    training     the trainable parameters' weights, gradients and AdamW states, as accelerate's
                 `estimate_training_usage` counts them (model + gradients + optimizer)
    activations  a rough term: 34 x hidden bytes per token and layer without gradient checkpointing
                 (Korthikanti et al., 2022, with fused attention), 2 x hidden per token and layer plus
                 one layer's worth with it, and 10 bytes per logit (bf16 logits, fp32 copy, gradient);
                 DPO doubles the tokens (chosen and rejected)
    overhead     2 GiB of CUDA context and allocator slack, plus 5%
The parameter counts come from the model built on the meta device (accelerate's init_empty_weights),
so they are exact for any architecture transformers knows. Imports no Django; torch, transformers and
accelerate are imported only by the functions that need them.
"""
from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

GIB = 2**30
PRESET_NAMES = ("none", "auto", "0.5b", "1-3b", "7-8b")
SIZES = ("0.5b", "1-3b", "7-8b")
# The CommonConfig values of each size; explicit fields of the run are laid over them.
PRESETS: dict[str, dict] = {
    "0.5b": {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "gradient_checkpointing": False,
             "batch_size": 4, "gradient_accumulation_steps": 4, "bf16": None},
    "1-3b": {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "gradient_checkpointing": True,
             "batch_size": 4, "gradient_accumulation_steps": 4, "bf16": None},
    "7-8b": {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "gradient_checkpointing": True,
             "batch_size": 2, "gradient_accumulation_steps": 8, "bf16": None},
}
# The GPU each size is made for, in GiB (the estimate says whether a run fits it).
TARGET_GIB = {"0.5b": 24, "1-3b": 40, "7-8b": 80}
# Parameter counts at which auto moves to the next size.
SIZE_LIMITS = (("0.5b", 1.0e9), ("1-3b", 4.5e9), ("7-8b", float("inf")))
ZERO3_GPUS = 8  # the GPUs the ZeRO-3 figure assumes when the run asks for one
OVERHEAD_BYTES = 2 * GIB
OVERHEAD_SHARE = 0.05


class PresetError(ValueError):
    """A preset or a base model that the estimate cannot use; `field` names the config field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def size_for_parameters(parameters: int) -> str:
    """The preset of a model with this many parameters."""
    for name, limit in SIZE_LIMITS:
        if parameters < limit:
            return name
    return SIZES[-1]


# Reading a model's shape ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a base model, read from its config without loading weights."""

    architecture: str
    parameters: int
    linear_parameters: int  # in the decoder's nn.Linear layers (what QLoRA quantises; lm_head excluded)
    lora_parameters_per_rank: int  # LoRA parameters per unit of rank on every linear layer but lm_head
    hidden_size: int
    num_layers: int
    vocab_size: int


def model_shape_from_config(config) -> ModelShape:
    """A transformers PretrainedConfig's shape, by building the model on the meta device (no memory)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    model.tie_weights()  # a tied lm_head is one tensor with the embeddings, counted once
    head = model.get_output_embeddings()
    linear = per_rank = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not head:
            linear += module.weight.numel()
            per_rank += module.in_features + module.out_features
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return ModelShape(
        architecture=(getattr(config, "architectures", None) or [type(model).__name__])[0],
        parameters=sum(p.numel() for p in model.parameters()),
        linear_parameters=linear,
        lora_parameters_per_rank=per_rank,
        hidden_size=int(text.hidden_size),
        num_layers=int(text.num_hidden_layers),
        vocab_size=int(text.vocab_size),
    )


def model_shape(model_path: str) -> ModelShape:
    """The shape of the model at a directory (or a hub id in the local cache); PresetError if unreadable."""
    folder = Path(model_path)
    stamp = (folder / "config.json").stat().st_mtime_ns if (folder / "config.json").is_file() else 0
    return _model_shape(str(model_path), stamp)


@functools.lru_cache(maxsize=64)
def _model_shape(model_path: str, stamp: int) -> ModelShape:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never a download to size a model
    from transformers import AutoConfig

    # Any failure is the model's, not the caller's: a config from a newer transformers, a broken file.
    try:
        config = AutoConfig.from_pretrained(model_path, local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise PresetError("model_path", f"cannot read the config of {model_path}: {exc}") from None
    try:
        return model_shape_from_config(config)
    except Exception as exc:  # noqa: BLE001
        raise PresetError("model_path", f"{model_path} is not a causal language model transformers knows: "
                                        f"{exc}") from None


# Applying a preset ---------------------------------------------------------------------------------


def preset_size(preset: str | None, model_path: str | None = None) -> str | None:
    """The size preset that `preset` means for this model: None for none, the size for auto."""
    if preset in (None, "none"):
        return None
    if preset == "auto":
        if not model_path:
            raise PresetError("preset", "auto needs the base model to read its size")
        return size_for_parameters(model_shape(model_path).parameters)
    if preset not in PRESETS:
        raise PresetError("preset", f"must be one of {', '.join(PRESET_NAMES)}; got {preset!r}")
    return preset


def with_preset(data: dict, fields: set[str] | None = None) -> dict:
    """A run config (a dict) with its preset's values under its explicit ones: explicit fields win.

    `fields` limits the preset to the fields a pipeline has (every CommonConfig has them all).
    """
    size = preset_size(data.get("preset"), data.get("model_path"))
    if size is None:
        return dict(data)
    values = {k: v for k, v in PRESETS[size].items() if fields is None or k in fields}
    return {**values, **data}


# The estimate ---------------------------------------------------------------------------------------


@dataclass
class MemoryEstimate:
    """Bytes per GPU by part, their total, and whether it fits the target GPU; `notes` say why not."""

    parameters: int
    trainable_parameters: int
    method: str  # full, lora or qlora
    preset: str | None
    weights: int
    training: int
    activations: int
    overhead: int
    total: int
    target_gib: int | None
    fits: bool | None
    zero3_gpus: int | None = None
    zero3_total: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    def as_dict(self) -> dict:
        data = asdict(self)
        data["total_gib"] = round(self.total_gib, 1)
        if self.zero3_total is not None:
            data["zero3_total_gib"] = round(self.zero3_total / GIB, 1)
        return data


def _training_bytes(trainable: int, bf16: bool) -> int:
    """Weights + gradients + AdamW states of the trainable parameters, as accelerate counts them."""
    from accelerate.commands.estimate import estimate_training_usage

    usage = estimate_training_usage(trainable * 4, "bfloat16" if bf16 else "float32")
    return int(usage["model"] + usage["gradients"] + usage["optimizer"])


def memory_estimate(shape: ModelShape, *, kind: str = "sft", lora_r: int = 0, load_in_4bit: bool = False,
                    bf16: bool | None = None, batch_size: int = 8, max_length: int = 256,
                    gradient_checkpointing: bool = False, num_gpus: int = 1, preset: str | None = None,
                    target_gib: int | None = None) -> MemoryEstimate:
    """The memory one GPU needs to train `shape` with these settings (see the module's docstring).

    bf16 None counts as bf16 (what a GPU that supports it uses). `target_gib` defaults to the
    preset's GPU, or to the GPU of the model's own size.
    """
    bf16 = True if bf16 is None else bf16
    size = preset if preset in PRESETS else size_for_parameters(shape.parameters)
    target = target_gib if target_gib is not None else TARGET_GIB[size]
    element = 2 if bf16 else 4
    if load_in_4bit and lora_r > 0:
        method = "qlora"
        trainable = lora_r * shape.lora_parameters_per_rank
        weights = shape.linear_parameters // 2 + (shape.parameters - shape.linear_parameters) * 2
    elif lora_r > 0:
        method = "lora"
        trainable = lora_r * shape.lora_parameters_per_rank
        weights = shape.parameters * element
    else:
        method = "full"
        trainable = shape.parameters
        weights = 0  # the trainable weights are counted with their gradients and optimizer states
    training = _training_bytes(trainable, bf16)
    if method == "full" and kind in ("dpo", "rlhf"):
        weights += shape.parameters * element  # a frozen reference copy (LoRA uses the base without adapters)
    tokens = batch_size * max_length * (2 if kind in ("dpo", "reward") else 1)
    scale = element / 2  # the layer formula counts 16-bit activations
    if gradient_checkpointing:
        layers = (2 * shape.num_layers + 34) * shape.hidden_size * tokens * scale
    else:
        layers = 34 * shape.num_layers * shape.hidden_size * tokens * scale
    logits = 10 * tokens * shape.vocab_size if kind != "reward" else 0
    activations = int(layers + logits)
    subtotal = weights + training + activations
    overhead = int(OVERHEAD_BYTES + OVERHEAD_SHARE * subtotal)
    total = subtotal + overhead
    fits = total <= target * GIB
    notes = []
    zero3_gpus = zero3_total = None
    if method == "full":
        zero3_gpus = num_gpus if num_gpus > 1 else ZERO3_GPUS
        sharded = (weights + training) // zero3_gpus + activations
        zero3_total = int(sharded + OVERHEAD_BYTES + OVERHEAD_SHARE * sharded)
    if not fits:
        if method == "full":
            notes.append(
                f"Full fine-tuning of {shape.parameters / 1e9:.1f}B parameters needs about {total / GIB:.0f} GiB "
                f"per GPU, more than a {target} GB GPU: use a preset (LoRA), or DeepSpeed ZeRO-3 across "
                f"{zero3_gpus} GPUs (about {zero3_total / GIB:.0f} GiB each).")
        else:
            notes.append(f"About {total / GIB:.0f} GiB per GPU is more than a {target} GB GPU: lower batch_size or "
                         "max_length, turn on gradient_checkpointing, or load the base in 4-bit (QLoRA).")
    if kind == "rlhf":
        notes.append("The reward model and the sampled completions are not counted.")
    return MemoryEstimate(
        parameters=shape.parameters, trainable_parameters=trainable, method=method, preset=preset,
        weights=weights, training=training, activations=activations, overhead=overhead, total=total,
        target_gib=target, fits=fits, zero3_gpus=zero3_gpus, zero3_total=zero3_total, notes=notes,
    )


def config_memory_estimate(kind: str, config: dict, defaults: dict | None = None) -> MemoryEstimate:
    """The estimate of a run config (a dict with model_path): the pipeline's defaults, under the preset's
    values, under the config's own fields."""
    data = {**(defaults or {}), **with_preset(config)}
    shape = model_shape(data["model_path"])
    return memory_estimate(
        shape, kind=kind, lora_r=int(data.get("lora_r") or 0), load_in_4bit=bool(data.get("load_in_4bit")),
        bf16=data.get("bf16"), batch_size=int(data.get("batch_size") or 8),
        max_length=int(data.get("max_length") or 256),
        gradient_checkpointing=bool(data.get("gradient_checkpointing")), num_gpus=int(data.get("num_gpus") or 1),
        preset=preset_size(data.get("preset"), data["model_path"]),
    )
