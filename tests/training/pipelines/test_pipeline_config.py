"""Config validation (what the web app calls before queueing a run) and cheap imports."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.pipelines.common import (
    CONFIG_CLASSES,
    ConfigError,
    check_bounds,
    config_class,
    config_fields,
    config_from_dict,
    config_to_dict,
    last_checkpoint,
    meta,
    validate_config,
)
from training.pipelines.dpo import DpoPipelineConfig
from training.pipelines.generate import GeneratePipelineConfig
from training.pipelines.reward import RewardPipelineConfig
from training.pipelines.rlhf import RlhfPipelineConfig
from training.pipelines.sft import SftPipelineConfig

REPO = Path(__file__).resolve().parents[3]
SFT = {"model_path": "m", "train_file": "t.jsonl", "output_dir": "out"}


def test_valid_config_round_trips():
    cfg = config_from_dict(SftPipelineConfig, {**SFT, "max_steps": 5, "learning_rate": 1, "lora_r": 8})
    assert cfg.max_steps == 5 and cfg.lora_r == 8
    assert isinstance(cfg.learning_rate, float)  # an int is accepted for a float field
    assert config_from_dict(SftPipelineConfig, config_to_dict(cfg)) == cfg


def test_unknown_field_is_rejected_and_named():
    with pytest.raises(ConfigError) as err:
        config_from_dict(SftPipelineConfig, {**SFT, "learning_rat": 1e-4})
    assert err.value.field == "learning_rat"
    assert "unknown" in err.value.message


@pytest.mark.parametrize("name,value", [("max_steps", "10"), ("max_steps", 1.5), ("max_steps", True),
                                        ("learning_rate", "fast"), ("lora_target_modules", "q_proj"),
                                        ("assistant_only_loss", 1)])
def test_wrong_type_is_rejected_and_named(name, value):
    with pytest.raises(ConfigError) as err:
        config_from_dict(SftPipelineConfig, {**SFT, name: value})
    assert err.value.field == name
    assert "expected" in err.value.message
    assert name in str(err.value)


def test_missing_required_field_is_named():
    with pytest.raises(ConfigError) as err:
        config_from_dict(SftPipelineConfig, {"model_path": "m", "output_dir": "o"})
    assert err.value.field == "train_file"


def test_value_checks_name_the_field():
    rlhf = {"model_path": "m", "reward_model_path": "r", "prompts_file": "p", "output_dir": "o"}
    assert config_from_dict(RlhfPipelineConfig, rlhf).beta > 0  # a non-zero KL beta by default
    for bad, field in [({"algorithm": "ppo"}, "algorithm"), ({"beta": 0.0}, "beta"),
                       ({"num_generations": 3}, "batch_size"), ({"lora_r": -1}, "lora_r")]:
        with pytest.raises(ConfigError) as err:
            config_from_dict(RlhfPipelineConfig, {**rlhf, **bad})
        assert err.value.field == field
    with pytest.raises(ConfigError) as err:
        config_from_dict(RewardPipelineConfig, {**SFT, "eval_fraction": 1.5})
    assert err.value.field == "eval_fraction"
    assert config_from_dict(DpoPipelineConfig, SFT).beta == 0.1
    with pytest.raises(ConfigError) as err:
        config_from_dict(GeneratePipelineConfig, {"model_path": "m", "prompts_file": "p", "output_file": "o", "k": 0})
    assert err.value.field == "k"


def test_validate_config_by_kind():
    assert isinstance(validate_config("sft", SFT), SftPipelineConfig)
    with pytest.raises(ConfigError) as err:
        validate_config("ppo", SFT)
    assert err.value.field == "kind"
    with pytest.raises(ConfigError) as err:
        validate_config("reward", {**SFT, "margin_scale": "x"})
    assert err.value.field == "margin_scale"


def test_pipeline_modules_import_without_torch_or_django():
    code = (
        "import sys\n"
        "import training.pipelines.common, training.pipelines.sft, training.pipelines.reward\n"
        "training.pipelines.common.validate_config('dpo', {'model_path': 'm', 'train_file': 't', 'output_dir': 'o'})\n"
        "import training.pipelines.rlhf, training.pipelines.dpo, training.pipelines.generate\n"
        "import training.pipelines.evaluate, training.pipelines.synthetic, training.pipelines.base_model\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'django') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_cli_rejects_a_bad_config_with_an_error_event(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**SFT, "max_steps": "many"}))
    out = subprocess.run([sys.executable, "-m", "training.pipelines.sft", "--config", str(path)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    event = json.loads(out.stdout.strip().splitlines()[-1])
    assert event["event"] == "error" and event["field"] == "max_steps"


def test_a_damaged_last_checkpoint_gives_way_to_the_one_before(tmp_path, capsys):
    import numpy as np
    from safetensors.numpy import save_file

    for step in (10, 20):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        save_file({"w": np.ones((64, 64), dtype=np.float32)}, str(folder / "model.safetensors"))
    newest = tmp_path / "checkpoint-20" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # killed while saving
    assert last_checkpoint(tmp_path).endswith("checkpoint-10")
    assert "checkpoint-20 is damaged (model.safetensors" in capsys.readouterr().out
    assert (tmp_path / "damaged-checkpoint-20").is_dir() and not (tmp_path / "checkpoint-20").exists()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text("{cut")
    assert last_checkpoint(tmp_path) is None  # nothing intact: train from the start


def test_last_checkpoint_picks_the_highest_step(tmp_path):
    assert last_checkpoint(tmp_path) is None
    for step in (5, 20, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-200").mkdir()  # incomplete: no trainer state
    assert last_checkpoint(tmp_path).endswith("checkpoint-100")


# Bounds in the field metadata --------------------------------------------------------------------

ALL_KINDS = sorted(CONFIG_CLASSES)
PATHS = ("_path", "_file", "_dir")


def minimal(cls) -> dict:
    return {name: "x" for name, spec in config_fields(cls).items() if spec["required"]}


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_field_declares_its_range_or_choices(kind):
    for name, spec in config_fields(config_class(kind)).items():
        if spec["type"] in ("int", "float"):
            assert "min" in spec and "max" in spec, (kind, name)
        elif spec["type"] == "list":
            assert "max_items" in spec, (kind, name)
        elif spec["type"] == "str" and not name.endswith(PATHS):
            assert spec.get("choices"), (kind, name)
        if not spec["required"]:
            check_bounds(name, spec["default"], spec)  # every default is allowed


def outside(spec: dict) -> list:
    """Values just past each bound (the bound itself when it is exclusive)."""
    step = 1 if spec["type"] == "int" else 1e-9
    values = [spec["min"] if spec.get("exclusive_min") else spec["min"] - step,
              spec["max"] if spec.get("exclusive_max") else spec["max"] + step]
    return [v for v in values if v not in spec.get("also", [])]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_config_from_dict_enforces_every_declared_range(kind):
    cls = config_class(kind)
    for name, spec in config_fields(cls).items():
        if "min" not in spec:
            continue
        for value in outside(spec):
            with pytest.raises(ConfigError) as err:
                config_from_dict(cls, {**minimal(cls), name: value})
            assert err.value.field == name and spec["bounds"] in err.value.message, (kind, name, value)


def test_ranges_choices_and_their_words():
    fields = config_fields(SftPipelineConfig)
    assert fields["max_steps"]["bounds"] == "-1, or from 1 to 1000000"
    assert fields["learning_rate"]["bounds"] == "> 0 and <= 1"
    assert fields["lora_dropout"]["bounds"] == ">= 0 and < 1"
    assert config_from_dict(SftPipelineConfig, {**SFT, "max_steps": -1}).max_steps == -1
    assert config_from_dict(SftPipelineConfig, {**SFT, "save_total_limit": None}).save_total_limit is None
    for bad in (float("nan"), float("inf"), 10**400):
        with pytest.raises(ConfigError) as err:
            config_from_dict(SftPipelineConfig, {**SFT, "learning_rate": bad})
        assert err.value.field == "learning_rate" and len(err.value.message) < 120
    with pytest.raises(ConfigError) as err:
        config_from_dict(SftPipelineConfig, {**SFT, "lr_scheduler_type": "greedy"})
    assert err.value.field == "lr_scheduler_type" and "one of linear, cosine" in err.value.message
    with pytest.raises(ConfigError) as err:
        config_from_dict(DpoPipelineConfig, {**SFT, "loss_type": "exo_pair"})
    assert err.value.field == "label_smoothing"  # TRL's EXO divides by log(label_smoothing)
    assert config_from_dict(DpoPipelineConfig, {**SFT, "loss_type": "exo_pair", "label_smoothing": 1e-3})
    with pytest.raises(ConfigError) as err:
        config_from_dict(SftPipelineConfig, {**SFT, "lr_scheduler_type": "polynomial", "learning_rate": 1e-8})
    assert err.value.field == "learning_rate"


def test_meta_refuses_a_contradictory_range():
    with pytest.raises(TypeError):
        meta("x", ge=1, gt=0)
    with pytest.raises(TypeError):
        meta("x", ge=5, le=1)
    assert meta("x", gt=0, le=1) == {"help": "x", "min": 0, "exclusive_min": True, "max": 1}


def test_the_docs_list_every_field_with_its_bounds():
    doc = (REPO / "docs" / "training-config.md").read_text()
    for kind in ALL_KINDS:
        for name, spec in config_fields(config_class(kind)).items():
            if name.endswith(PATHS):
                continue
            assert f"`{name}`" in doc, (kind, name)
            if kind in ("sft", "reward", "dpo", "rlhf") and "bounds" in spec:
                assert spec["bounds"] in doc, (kind, name, spec["bounds"])
