"""bench/gpu_check.sh: says clearly when no GPU is present, and its tiny version runs every stage on a CPU."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402
import gpu_sft  # noqa: E402


def test_without_a_gpu_it_says_so_and_exits_0():
    import torch

    assert not torch.cuda.is_available()  # the CI machine has none
    done = subprocess.run([str(ROOT / "bench" / "gpu_check.sh")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == gpu_check.NO_GPU and "no GPU present" in done.stdout


def test_the_peak_table_names_the_gpus_it_knows():
    assert gpu_sft.peak_flops("NVIDIA H200") == gpu_sft.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_sft.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12


def test_mfu_is_six_n_tokens_per_second_over_the_peak():
    events = [(10.0, {"event": "progress", "step": 1, "metrics": {"num_tokens": 1000}}),
              (11.0, {"event": "progress", "step": 5, "metrics": {"num_tokens": 5000}}),
              (13.0, {"event": "progress", "step": 9, "metrics": {"num_tokens": 13000}})]
    speed = gpu_check.throughput({"events": events}, warmup=5, parameters=500_000_000, peak=989e12)
    assert speed["tokens_per_second"] == 4000 and speed["timed_steps"] == 4  # from step 5, warm-up left out
    assert speed["mfu"] == pytest.approx(6 * 500e6 * 4000 / 989e12)


def test_the_real_check_is_the_shape_of_qwen2_5_0_5b():
    from transformers import Qwen2Config

    from training.pipelines import presets

    shape = presets.model_shape_from_config(Qwen2Config(**gpu_check.QWEN2_05B, tie_word_embeddings=True))
    assert 0.45e9 < shape.parameters < 0.55e9
    assert gpu_check.GPU_PLAN.sft_steps == 50


@pytest.mark.slow
def test_the_tiny_check_runs_every_stage_through_the_pipelines(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    status = gpu_check.main(["--tiny", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    table = out[out.index("stage "):]
    for stage in ("sft", "dpo", "grpo", "generate"):
        assert f"\n{stage} " in table and "FAIL" not in table
    assert "transformers, " in table  # no vLLM here
    # Each stage left what its pipeline writes: trained models and the generated rows.
    for stage in ("sft", "dpo", "grpo"):
        assert (tmp_path / stage / "model" / "config.json").is_file()
        assert (tmp_path / stage / "metrics.json").is_file()
    assert (tmp_path / "generated.jsonl").read_text().count("\n") >= gpu_check.TINY_PLAN.prompts
