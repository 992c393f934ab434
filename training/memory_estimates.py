"""The new-run form's memory estimate: how much memory per GPU a run of this model and config needs.

The arithmetic is the pipelines' (training/pipelines/presets.py, no Django); this module only finds
the model's files, fills the config with the pipeline's defaults under the user's fields, and words
the result. The form calls it through POST /api/training-runs/estimate/ when it opens and as its fields change.
Sizing a model builds it on the meta device, so the first estimate imports torch and transformers
into the web process (seconds, once); the page itself never waits for that.
"""

from __future__ import annotations

from annotation.errors import InvalidInput

from . import registry, services
from .models import ModelVersion

METHODS = {"full": "full fine-tuning", "lora": "LoRA", "qlora": "QLoRA (4-bit base)"}


def _presets():
    from training.pipelines import presets

    return presets


def _count(n: int) -> str:
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def preset_fields() -> list[str]:
    """The config fields some preset sets: the form leaves them out when it asks what a preset gives."""
    return sorted({name for values in _presets().PRESETS.values() for name in values})


def estimate_summary(estimate: dict) -> str:
    """One sentence: the figure, what it counts, and whether it fits the GPU of the model's size."""
    text = (f"About {estimate['total_gib']:.1f} GiB per GPU: {METHODS[estimate['method']]} of "
            f"{_count(estimate['parameters'])} parameters ({_count(estimate['trainable_parameters'])} trained)")
    if estimate["fits"]:
        text += f"; fits a {estimate['target_gib']} GB GPU."
    else:
        text += f"; more than a {estimate['target_gib']} GB GPU."
    return text


def run_memory_estimate(*, kind: str, base_model: ModelVersion, config) -> dict:
    """The estimate of a run as a dict (presets.MemoryEstimate's fields, `summary`, `preset_values`).

    A config that the run would refuse is refused here the same way (a 400 naming config.<field>);
    a model whose config cannot be read offline is a 400 on base_model.
    """
    cleaned = services.run_config_validate(kind=kind, config=config or {})
    defaults = {name: spec.get("default") for name, spec in services.pipeline_fields(kind=kind).items()}
    presets = _presets()
    explicit = {**cleaned, "model_path": registry.model_location(base_model)}
    try:
        size = presets.preset_size(explicit.get("preset"), explicit["model_path"])
        estimate = presets.config_memory_estimate(kind, explicit, defaults)
    except presets.PresetError as exc:
        raise InvalidInput(f"base_model: {base_model.name}: {exc.message}", field="base_model") from None
    body = estimate.as_dict()
    body["summary"] = estimate_summary(body)
    body["preset_values"] = {name: value for name, value in presets.PRESETS.get(size, {}).items() if name in defaults}
    return body

