"""Each pipeline end to end on the tiny model: parameters change and the metric moves the right way."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.pipelines import dpo, reward, rlhf, sft, synthetic
from training.pipelines.generate import generate

from .conftest import changed, events, progress, write_jsonl

pytestmark = pytest.mark.slow


def mean(values):
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("sft") / "train.jsonl", synthetic.sft_rows(96, seed=5))


def test_tiny_base_model_loads_as_causal_lm_and_reward_model(tiny_model):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert 5e5 < sum(p.numel() for p in model.parameters()) < 3e6
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token_id is not None
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    out = tokenizer.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tokenizer.decode(masked) == "Hello.<|end|>"  # the assistant turn and its stop token are trained
    head = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    assert head.config.pad_token_id == tokenizer.pad_token_id
    batch = tokenizer(["a b", "a"], return_tensors="pt", padding=True)
    assert head(**batch).logits.shape == (2, 1)


def test_sft_loss_falls_and_weights_change(tiny_model, sft_file, tmp_path, capsys):
    cfg = sft.SftPipelineConfig(model_path=tiny_model, train_file=sft_file, output_dir=str(tmp_path),
                                max_steps=30, batch_size=8, learning_rate=1e-3, logging_steps=1, save_steps=1000)
    metrics = sft.run(cfg)
    out = capsys.readouterr().out
    losses = progress(out, "loss")
    assert len(losses) >= 20
    assert [e["step"] for e in events(out) if e["event"] == "done"] == [30]  # the platform refuses 0
    assert mean(losses[-5:]) < 0.9 * mean(losses[:5])
    assert changed(tiny_model, tmp_path / "model")
    assert json.loads((tmp_path / "metrics.json").read_text())["train_loss"] == pytest.approx(metrics["train_loss"])
    assert (tmp_path / "model" / "tokenizer.json").exists()


def test_sft_resumes_from_the_last_checkpoint(tiny_model, sft_file, tmp_path, capsys):
    base = dict(model_path=tiny_model, train_file=sft_file, output_dir=str(tmp_path), batch_size=8,
                learning_rate=5e-4, logging_steps=1, save_steps=3)
    sft.run(sft.SftPipelineConfig(**base, max_steps=6))
    first = events(capsys.readouterr().out)
    assert first[0]["event"] == "start" and first[0]["step"] == 0
    assert (tmp_path / "checkpoint-6" / "pipeline_config.json").exists()

    sft.run(sft.SftPipelineConfig(**base, max_steps=10))
    second = events(capsys.readouterr().out)
    start = second[0]
    assert start["event"] == "start" and start["step"] == 6 and start["resumed_from"].endswith("checkpoint-6")
    steps = [e["step"] for e in second if e["event"] == "progress"]
    assert min(steps) > 6 and max(steps) == 10
    assert second[-1]["event"] == "done"


def test_sft_resumes_from_the_checkpoint_before_a_truncated_one(tiny_model, sft_file, tmp_path, capsys):
    base = dict(model_path=tiny_model, train_file=sft_file, output_dir=str(tmp_path), batch_size=8,
                learning_rate=5e-4, logging_steps=1, save_steps=3, save_total_limit=None)
    sft.run(sft.SftPipelineConfig(**base, max_steps=6))
    capsys.readouterr()
    weights_file = tmp_path / "checkpoint-6" / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:4096])  # the worker died while saving
    sft.run(sft.SftPipelineConfig(**base, max_steps=8))
    out = capsys.readouterr().out
    start = [e for e in events(out) if e["event"] == "start"][0]
    assert start["step"] == 3 and start["resumed_from"].endswith("checkpoint-3")
    assert "checkpoint-6 is damaged" in out and events(out)[-1]["event"] == "done"


def test_sft_with_lora_saves_a_merged_model(tiny_model, sft_file, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    cfg = sft.SftPipelineConfig(model_path=tiny_model, train_file=sft_file, output_dir=str(tmp_path),
                                max_steps=6, batch_size=8, learning_rate=1e-3, lora_r=4, save_steps=1000)
    sft.run(cfg)
    assert progress(capsys.readouterr().out, "loss")
    assert not (tmp_path / "model" / "adapter_config.json").exists()
    AutoModelForCausalLM.from_pretrained(tmp_path / "model")  # plain weights, LoRA merged
    assert changed(tiny_model, tmp_path / "model")


def test_reward_model_separates_held_out_pairs(tiny_model, reward_model):
    metrics = reward_model["metrics"]
    # Well above chance (0.5); a loaded CI machine once gave 56 of 64 (0.875), another run 0.9 and more.
    assert metrics["eval_accuracy"] >= 0.85
    assert metrics["eval_pairs"] == 64
    assert changed(tiny_model, reward_model["dir"])
    saved = json.loads(Path(reward_model["output_dir"], "metrics.json").read_text())
    assert saved["eval_accuracy"] == metrics["eval_accuracy"]


def test_tied_rows_are_the_margin_zero_pairs_whose_reverse_is_in_the_data():
    from datasets import Dataset

    def pair(prompt, chosen, rejected, margin=0.0):
        return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}], "margin": margin}

    data = Dataset.from_list([
        pair("p", "a", "b"), pair("p", "b", "a"),  # a tie, exported both ways
        pair("p", "a", "c", 0.5), pair("p", "c", "a", 0.25),  # two labelers who disagree: not a tie
        pair("q", "c", "a"),  # another prompt
    ])
    assert reward.tied_rows(data) == [0, 1]
    held_out = Dataset.from_list([pair("p", "a", "b"), pair("q", "a", "c"), pair("q", "c", "b")])
    assert reward.tied_rows(held_out, within=data) == [0, 1]  # their reverses went to the training split
    assert reward.tied_rows(data.remove_columns("margin")) == []  # use_margin false: nothing tells a tie apart


def test_rlhf_raises_the_reward_and_reports_kl_and_entropy(tiny_model, reward_model, tmp_path, capsys):
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": p} for p in synthetic.make_prompts(64, seed=7)])
    cfg = rlhf.RlhfPipelineConfig(
        model_path=tiny_model, reward_model_path=reward_model["dir"], prompts_file=prompts,
        output_dir=str(tmp_path / "run"), max_steps=12, batch_size=16, num_generations=4,
        max_completion_length=12, learning_rate=5e-4, logging_steps=1, save_steps=1000, seed=0,
    )
    metrics = rlhf.run(cfg)
    out = capsys.readouterr().out
    rewards = progress(out, "reward")
    assert len(rewards) == 12
    assert mean(rewards[-3:]) > mean(rewards[:3]) + 0.3
    kls, entropies = progress(out, "kl"), progress(out, "entropy")
    assert len(kls) == 12 and max(kls) > 0 and len(entropies) == 12
    assert metrics["kl"] > 0 and "entropy" in metrics
    assert changed(tiny_model, tmp_path / "run" / "model")


def test_dpo_reward_margin_grows(tiny_model, preference_files, tmp_path, capsys):
    cfg = dpo.DpoPipelineConfig(model_path=tiny_model, train_file=preference_files["train"],
                                eval_file=preference_files["eval"], output_dir=str(tmp_path),
                                max_steps=30, batch_size=8, learning_rate=1e-3, logging_steps=1, save_steps=1000)
    metrics = dpo.run(cfg)
    margins = progress(capsys.readouterr().out, "rewards/margins")
    assert margins[0] == pytest.approx(0.0, abs=1e-6)  # the policy starts equal to its reference
    assert mean(margins[-5:]) > mean(margins[:5]) + 0.1
    assert metrics["eval_rewards/margins"] > 0.15
    assert changed(tiny_model, tmp_path / "model")


def test_generate_returns_k_distinct_responses(tiny_model):
    prompts = synthetic.make_prompts(3, seed=11)
    out = generate(tiny_model, prompts, k=4, temperature=1.0, top_p=0.95, max_new_tokens=16, seed=3)
    assert len(out) == 3
    for responses in out:
        assert len(responses) == 4 and len(set(responses)) == 4 and all(r.strip() for r in responses)
    again = generate(tiny_model, prompts, k=4, temperature=1.0, top_p=0.95, max_new_tokens=16, seed=3)
    assert again == out  # fixed seed, same samples


def test_sft_cli_writes_json_lines_and_outputs(tiny_model, sft_file, tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"model_path": tiny_model, "train_file": sft_file, "output_dir": str(tmp_path / "o"),
                                  "max_steps": 2, "batch_size": 4, "logging_steps": 1}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "training.pipelines.sft", "--config", str(config)],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]  # stdout is only JSON lines
    assert [lines[0]["event"], lines[-1]["event"]] == ["start", "done"]
    assert {"step", "total", "metrics"} <= set(lines[1])
    assert (tmp_path / "o" / "model" / "config.json").exists() and (tmp_path / "o" / "metrics.json").exists()


def test_preference_margin_column_reaches_the_reward_trainer(preference_files):
    from training.pipelines.reward import preference_dataset

    with_margin = preference_dataset(preference_files["train"], margin_scale=0.5)
    rows = [json.loads(line) for line in open(preference_files["train"])]
    assert with_margin["margin"][:5] == [0.5 * r["margin"] for r in rows[:5]]
    assert "margin" not in preference_dataset(preference_files["train"], use_margin=False).column_names
