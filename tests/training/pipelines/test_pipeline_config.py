"""Config validation (what the web app calls before queueing a run) and cheap imports."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.pipelines.common import (
    ConfigError,
    config_from_dict,
    config_to_dict,
    last_checkpoint,
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


def test_last_checkpoint_picks_the_highest_step(tmp_path):
    assert last_checkpoint(tmp_path) is None
    for step in (5, 20, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-200").mkdir()  # incomplete: no trainer state
    assert last_checkpoint(tmp_path).endswith("checkpoint-100")
