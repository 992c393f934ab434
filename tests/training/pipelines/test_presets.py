"""Presets by model size and the memory estimate, checked against accelerate's own estimate.

Each size is represented by a real architecture's config, written here (no download): the model is
built on the meta device, so an 8B model costs no memory.
"""
from __future__ import annotations

import json

import pytest

from training.pipelines import presets
from training.pipelines.common import ConfigError, config_from_dict, load_config, model_load_kwargs
from training.pipelines.sft import SftPipelineConfig

GIB = 2**30


def qwen2(hidden, intermediate, layers, heads, kv_heads):
    from transformers import Qwen2Config

    return Qwen2Config(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=151936,
                       tie_word_embeddings=True, architectures=["Qwen2ForCausalLM"])


def llama3_8b():
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False,
                       architectures=["LlamaForCausalLM"])


# The largest model of each band, in the shape of a model people train at that size.
ARCHITECTURES = {
    "0.5b": lambda: qwen2(896, 4864, 24, 14, 2),  # Qwen2.5-0.5B
    "1-3b": lambda: qwen2(2048, 11008, 36, 16, 2),  # Qwen2.5-3B
    "7-8b": llama3_8b,  # Llama-3-8B
}
TARGETS = {"0.5b": 24, "1-3b": 40, "7-8b": 80}


@pytest.fixture(scope="module")
def shapes():
    return {size: presets.model_shape_from_config(make()) for size, make in ARCHITECTURES.items()}


def accelerate_training_bytes(config) -> int:
    """`accelerate estimate-memory`'s figure for Adam training in bf16 mixed precision, from the config alone."""
    from accelerate import init_empty_weights
    from accelerate.commands.estimate import calculate_maximum_sizes, estimate_training_usage
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    model.tie_weights()
    total, _ = calculate_maximum_sizes(model)
    usage = estimate_training_usage(total, "bfloat16")
    return usage["model"] + usage["gradients"] + usage["optimizer"]


def test_the_shapes_are_the_real_models_sizes(shapes):
    assert 0.45e9 < shapes["0.5b"].parameters < 0.55e9  # Qwen2.5-0.5B: 494M
    assert 3.0e9 < shapes["1-3b"].parameters < 3.2e9  # Qwen2.5-3B: 3.09B
    assert 7.9e9 < shapes["7-8b"].parameters < 8.1e9  # Llama-3-8B: 8.03B
    assert {size: presets.size_for_parameters(s.parameters) for size, s in shapes.items()} == {
        size: size for size in shapes}


@pytest.mark.parametrize("size", presets.SIZES)
@pytest.mark.parametrize("kind", ["sft", "dpo", "rlhf"])
def test_each_preset_fits_the_gpu_of_its_size(shapes, size, kind):
    values = presets.PRESETS[size]
    estimate = presets.memory_estimate(
        shapes[size], kind=kind, lora_r=values["lora_r"], bf16=values["bf16"], batch_size=values["batch_size"],
        max_length=1024, gradient_checkpointing=values["gradient_checkpointing"], preset=size)
    assert estimate.method == "lora"
    assert estimate.target_gib == TARGETS[size]
    assert estimate.fits and estimate.total < TARGETS[size] * GIB, estimate.as_dict()
    # The LoRA weights train with what accelerate counts for Adam in bf16 mixed precision.
    assert estimate.training == accelerate_training_bytes_of(estimate.trainable_parameters)


def accelerate_training_bytes_of(parameters: int) -> int:
    from accelerate.commands.estimate import estimate_training_usage

    usage = estimate_training_usage(parameters * 4, "bfloat16")
    return usage["model"] + usage["gradients"] + usage["optimizer"]


@pytest.mark.parametrize("size", presets.SIZES)
def test_full_fine_tuning_counts_what_accelerate_counts(shapes, size):
    estimate = presets.memory_estimate(shapes[size], lora_r=0, batch_size=1, max_length=8)
    assert estimate.method == "full" and estimate.trainable_parameters == shapes[size].parameters
    # accelerate also counts the buffers (rotary frequencies): a few kilobytes in tens of gigabytes.
    assert estimate.training == pytest.approx(accelerate_training_bytes(ARCHITECTURES[size]()), rel=1e-6)
    assert estimate.total > estimate.training  # plus activations and overhead


def test_full_fine_tuning_of_8b_does_not_fit_80gb_and_points_to_zero3(shapes):
    estimate = presets.memory_estimate(shapes["7-8b"], lora_r=0, batch_size=2, max_length=1024,
                                       gradient_checkpointing=True, preset="7-8b")
    assert not estimate.fits and estimate.total > 80 * GIB
    assert estimate.training > 80 * GIB  # weights, gradients and Adam states alone
    assert "ZeRO-3" in estimate.notes[0] and "8 GPUs" in estimate.notes[0]
    assert estimate.zero3_gpus == 8 and estimate.zero3_total < 80 * GIB  # sharded, it fits each GPU


def test_qlora_holds_the_base_in_about_half_a_byte_per_weight(shapes):
    shape = shapes["7-8b"]
    lora = presets.memory_estimate(shape, lora_r=16, batch_size=2, max_length=1024, gradient_checkpointing=True)
    qlora = presets.memory_estimate(shape, lora_r=16, load_in_4bit=True, batch_size=2, max_length=1024,
                                    gradient_checkpointing=True)
    assert qlora.method == "qlora" and qlora.total < lora.total - 8 * GIB
    assert qlora.weights < shape.parameters  # under a byte per parameter
    assert qlora.training == lora.training


def test_checkpointing_and_batch_move_the_estimate_the_right_way(shapes):
    shape = shapes["1-3b"]
    base = dict(lora_r=16, batch_size=4, max_length=1024)
    plain = presets.memory_estimate(shape, **base)
    checkpointed = presets.memory_estimate(shape, **base, gradient_checkpointing=True)
    bigger = presets.memory_estimate(shape, **{**base, "batch_size": 16})
    assert checkpointed.activations < plain.activations < bigger.activations


def write_config(folder, config) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    return str(folder)


def test_auto_picks_the_preset_by_the_model_directorys_size(tmp_path):
    small = write_config(tmp_path / "small", ARCHITECTURES["0.5b"]())
    large = write_config(tmp_path / "large", llama3_8b())
    assert presets.preset_size("auto", small) == "0.5b"
    assert presets.preset_size("auto", large) == "7-8b"
    assert presets.preset_size("none", large) is None
    assert presets.preset_size("1-3b", large) == "1-3b"


def test_a_preset_lies_under_the_explicit_fields(tmp_path):
    model = write_config(tmp_path / "model", llama3_8b())
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"model_path": model, "output_dir": str(tmp_path / "out"), "train_file": "t.jsonl",
                                "preset": "auto", "batch_size": 1, "lora_r": 64}))
    cfg = load_config(SftPipelineConfig, path)
    assert (cfg.batch_size, cfg.lora_r) == (1, 64)  # explicit wins
    assert cfg.gradient_checkpointing is True and cfg.gradient_accumulation_steps == 8  # from 7-8b
    assert cfg.lora_dropout == presets.PRESETS["7-8b"]["lora_dropout"]


def test_no_preset_changes_nothing(tmp_path):
    data = {"model_path": "m", "output_dir": "o", "train_file": "t.jsonl"}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    assert load_config(SftPipelineConfig, path) == config_from_dict(SftPipelineConfig, data)


def test_auto_on_an_unreadable_model_names_the_field(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"model_path": str(tmp_path / "nothing"), "output_dir": "o", "train_file": "t.jsonl",
                                "preset": "auto"}))
    with pytest.raises(ConfigError) as err:
        load_config(SftPipelineConfig, path)
    assert err.value.field == "model_path" and "cannot read the config" in err.value.message


def test_an_unknown_preset_is_refused_by_name():
    with pytest.raises(ConfigError) as err:
        config_from_dict(SftPipelineConfig, {"model_path": "m", "output_dir": "o", "train_file": "t",
                                             "preset": "70b"})
    assert err.value.field == "preset" and "0.5b" in err.value.message


def test_qlora_needs_lora_and_a_cuda_gpu_with_bitsandbytes():
    base = {"model_path": "m", "output_dir": "o", "train_file": "t", "load_in_4bit": True}
    with pytest.raises(ConfigError) as err:
        config_from_dict(SftPipelineConfig, base)
    assert err.value.field == "load_in_4bit"
    cfg = config_from_dict(SftPipelineConfig, {**base, "lora_r": 8})
    with pytest.raises(ConfigError) as err:
        model_load_kwargs(cfg, "cpu", False)
    assert err.value.field == "load_in_4bit" and "CUDA" in err.value.message


def test_a_lora_base_loads_in_bf16_and_a_full_one_in_fp32():
    import torch

    lora = config_from_dict(SftPipelineConfig, {"model_path": "m", "output_dir": "o", "train_file": "t", "lora_r": 8})
    full = config_from_dict(SftPipelineConfig, {"model_path": "m", "output_dir": "o", "train_file": "t"})
    assert model_load_kwargs(lora, "cuda", True) == {"dtype": torch.bfloat16}
    assert model_load_kwargs(lora, "cpu", False) == {}
    assert model_load_kwargs(full, "cuda", True) == {}
