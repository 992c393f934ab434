"""One GPU check of the platform's pipelines on a real architecture at about 0.5B parameters.

    bench/gpu_check.sh             # on a GPU machine, after `make install`; under 10 minutes on one GPU
    bench/gpu_check.sh --tiny      # tiny shapes and 2 steps of each: the same wiring on a CPU, in a minute

Without a CUDA GPU (and without --tiny) it says "no GPU present" and exits 0.

1. Builds a randomly initialised Qwen2-style model (hidden 896, 24 layers, 14 heads of which 2 for keys
   and values, MLP 4864, vocabulary 151936: the shape of Qwen2.5-0.5B) with the tiny byte-level tokenizer
   the platform builds, and saves it in Hugging Face format. Nothing is downloaded.
2. SFT: 50 steps in bf16 through `python -m training.pipelines.sft --config ...`, timed from the progress
   events after 5 warm-up steps: tokens/s, and MFU = 6 x parameters x tokens/s / the GPU's peak bf16
   FLOPs (bench/gpu_sft.py's table: H100/H200 989e12, A100 312e12, ...; dense, no sparsity).
3. DPO (5 steps) and GRPO (3 steps, the same model as its reward model) through their pipelines.
4. A generation job through training.pipelines.generate: vLLM if installed, else transformers.
5. One summary table; the exit status is 1 if any stage failed.
The SFT row also shows the platform's memory estimate for that run (training/pipelines/presets.py).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

NO_GPU = "no GPU present: torch.cuda.is_available() is false, so there is nothing to check on this machine."
QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


@dataclass
class Plan:
    """The sizes of one check: the real one on a GPU, or the tiny one that proves the wiring anywhere."""

    shape: dict
    seq_len: int
    sft_steps: int
    sft_warmup: int
    sft_batch: int
    dpo_steps: int
    grpo_steps: int
    completion_len: int
    prompts: int
    k: int
    new_tokens: int


GPU_PLAN = Plan(shape=QWEN2_05B, seq_len=1024, sft_steps=50, sft_warmup=5, sft_batch=8, dpo_steps=5, grpo_steps=3,
                completion_len=64, prompts=32, k=4, new_tokens=64)
TINY_PLAN = Plan(shape=TINY, seq_len=64, sft_steps=2, sft_warmup=0, sft_batch=2, dpo_steps=2, grpo_steps=2,
                 completion_len=8, prompts=2, k=2, new_tokens=8)


def build_model(path: Path, plan: Plan) -> int:
    """A random Qwen2-style model with the platform's tiny tokenizer; returns its parameter count."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from training.pipelines import base_model

    paragraphs, dialogues = base_model.bundled_texts()
    tokenizer = base_model.train_tokenizer(paragraphs + [m["content"] for d in dialogues for m in d])
    tokenizer.model_max_length = plan.seq_len * 2
    shape = {**plan.shape, "vocab_size": max(plan.shape.get("vocab_size", 0), len(tokenizer))}
    config = Qwen2Config(**shape, max_position_embeddings=plan.seq_len * 4, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.eos_token_id, architectures=["Qwen2ForCausalLM"])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def write_data(root: Path, plan: Plan) -> dict[str, str]:
    from gpu_sft import write_long_chats

    from training.pipelines import synthetic

    files = {name: str(root / f"{name}.jsonl") for name in ("sft", "preference", "prompts")}
    write_long_chats(Path(files["sft"]), n=plan.sft_batch * (plan.sft_steps + 2), turns=max(1, plan.seq_len // 20))
    with open(files["preference"], "w") as f:
        for row in synthetic.preference_rows(8 * (plan.dpo_steps + 2), seed=1):
            f.write(json.dumps(row) + "\n")
    with open(files["prompts"], "w") as f:
        for prompt in synthetic.make_prompts(max(plan.prompts, 8 * plan.grpo_steps), seed=2):
            f.write(json.dumps({"prompt": prompt}) + "\n")
    return files


def run_stage(name: str, module: str, config: dict, workdir: Path, timeout: float) -> dict:
    """Run `python -m <module> --config` as the platform does; returns (time, event) pairs and the status."""
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", module, "--config", str(path)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=open(workdir / f"{name}.stderr", "w"), text=True)
    events = []
    try:
        for line in process.stdout:
            if line.startswith("{"):
                try:
                    events.append((time.perf_counter(), json.loads(line)))
                except json.JSONDecodeError:
                    continue
            if time.perf_counter() - started > timeout:
                process.kill()
                break
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    seconds = time.perf_counter() - started
    done = [e for _, e in events if e.get("event") == "done"]
    error = next((e.get("message") for _, e in events if e.get("event") == "error"), None)
    if status != 0 and error is None:
        tail = (workdir / f"{name}.stderr").read_text()[-600:]
        error = f"exit status {status}: {tail.strip().splitlines()[-1] if tail.strip() else 'no output'}"
    return {"name": name, "ok": status == 0 and bool(done), "seconds": seconds, "events": events,
            "done": done[-1] if done else {}, "error": error}


def throughput(stage: dict, warmup: int, parameters: int, peak: float | None) -> dict:
    """tokens/s (and MFU) between the first progress event at or after `warmup` and the last one."""
    progress = [(t, e) for t, e in stage["events"]
                if e.get("event") == "progress" and "num_tokens" in e.get("metrics", {})]
    if len(progress) < 2:
        return {}
    start = next(((t, e) for t, e in progress if e["step"] >= warmup), progress[0])
    end = progress[-1]
    if end[0] <= start[0]:
        return {}
    tokens = end[1]["metrics"]["num_tokens"] - start[1]["metrics"]["num_tokens"]
    rate = tokens / (end[0] - start[0])
    return {"tokens_per_second": rate, "mfu": 6 * parameters * rate / peak if peak else None,
            "timed_steps": end[1]["step"] - start[1]["step"]}


def sft_estimate(model_dir: Path, plan: Plan) -> str:
    from training.pipelines import presets

    estimate = presets.memory_estimate(presets.model_shape(str(model_dir)), kind="sft", batch_size=plan.sft_batch,
                                       max_length=plan.seq_len, bf16=True)
    return f"estimate {estimate.total_gib:.1f} GiB"


def check(plan: Plan, workdir: Path, *, device_name: str, peak: float | None, timeout: float) -> list[dict]:
    """Every stage in order; a stage that needs an earlier one's model is skipped when that one failed."""
    base = workdir / "base"
    parameters = build_model(base, plan)
    files = write_data(workdir, plan)
    common = {"logging_steps": 1, "save_steps": 1_000_000, "save_total_limit": None, "seed": 0, "resume": False}
    rows = []
    sft = run_stage("sft", "training.pipelines.sft", {
        **common, "model_path": str(base), "train_file": files["sft"], "output_dir": str(workdir / "sft"),
        "max_steps": plan.sft_steps, "batch_size": plan.sft_batch, "max_length": plan.seq_len,
        "learning_rate": 3e-4}, workdir, timeout)
    speed = throughput(sft, plan.sft_warmup, parameters, peak) if sft["ok"] else {}
    rows.append({**sft, **speed, "steps": sft["done"].get("step"), "note": sft_estimate(base, plan)})
    policy = workdir / "sft" / "model" if sft["ok"] else base
    dpo = run_stage("dpo", "training.pipelines.dpo", {
        **common, "model_path": str(policy), "train_file": files["preference"], "output_dir": str(workdir / "dpo"),
        "max_steps": plan.dpo_steps, "batch_size": 4, "max_length": plan.seq_len}, workdir, timeout)
    rows.append({**dpo, "steps": dpo["done"].get("step"),
                 "note": f"margin {dpo['done'].get('metrics', {}).get('rewards/margins', float('nan')):.3f}"})
    grpo = run_stage("grpo", "training.pipelines.rlhf", {
        **common, "model_path": str(policy), "reward_model_path": str(base), "prompts_file": files["prompts"],
        "output_dir": str(workdir / "grpo"), "algorithm": "grpo", "max_steps": plan.grpo_steps, "batch_size": 4,
        "num_generations": 4, "max_completion_length": plan.completion_len, "max_length": plan.seq_len},
        workdir, timeout)
    rows.append({**grpo, "steps": grpo["done"].get("step"),
                 "note": f"reward {grpo['done'].get('metrics', {}).get('reward', float('nan')):.3f}"})
    generation = run_stage("generate", "training.pipelines.generate", {
        "model_path": str(policy), "prompts_file": files["prompts"], "output_file": str(workdir / "generated.jsonl"),
        "k": plan.k, "max_new_tokens": plan.new_tokens, "batch_size": 16, "max_rounds": 1}, workdir, timeout)
    backend = next((e.get("backend") for _, e in generation["events"] if e.get("event") == "start"), "?")
    responses = generation["done"].get("metrics", {}).get("responses", 0)
    rows.append({**generation, "steps": generation["done"].get("metrics", {}).get("prompts"),
                 "tokens_per_second": None, "note": f"{backend}, {responses} responses"})
    for row in rows:
        row["parameters"], row["device"] = parameters, device_name
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'stage':<9} {'status':<6} {'steps':>5} {'seconds':>8} {'tokens/s':>10} {'MFU':>6}  note"
    lines = [head, "-" * len(head)]
    for row in rows:
        rate = f"{row['tokens_per_second']:,.0f}" if row.get("tokens_per_second") else "-"
        mfu = f"{row['mfu']:.1%}" if row.get("mfu") is not None and row.get("tokens_per_second") else "-"
        note = row["note"] if row["ok"] else f"FAILED: {row['error']}"
        lines.append(f"{row['name']:<9} {'ok' if row['ok'] else 'FAIL':<6} {str(row.get('steps') or '-'):>5} "
                     f"{row['seconds']:>8.1f} {rate:>10} {mfu:>6}  {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the pipelines on one GPU at about 0.5B parameters.")
    parser.add_argument("--tiny", action="store_true", help="Tiny shapes and 2 steps each: the wiring, on any device.")
    parser.add_argument("--workdir", help="Keep the models and logs here (default: a temporary directory).")
    parser.add_argument("--stage-timeout", type=float, default=240, help="Seconds one stage may take.")
    args = parser.parse_args(argv)

    import torch

    gpu = torch.cuda.is_available()
    if not gpu and not args.tiny:
        print(NO_GPU)
        return 0
    from gpu_sft import peak_flops

    name = torch.cuda.get_device_name(0) if gpu else "cpu"
    peak = peak_flops(name) if gpu else None
    plan = TINY_PLAN if args.tiny else GPU_PLAN
    print(f"gpu_check: {name}; peak bf16 {peak / 1e12:.0f} TFLOPs" if peak else f"gpu_check: {name} (tiny wiring check)",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        rows = check(plan, workdir, device_name=name, peak=peak, timeout=args.stage_timeout)
    print()
    print(f"{name}: {rows[0]['parameters'] / 1e6:,.1f}M parameters, {time.perf_counter() - started:,.0f} s in all")
    print(table(rows))
    print(json.dumps({"event": "gpu_check", "device": name, "parameters": rows[0]["parameters"], "stages": [
        {k: row.get(k) for k in ("name", "ok", "steps", "seconds", "tokens_per_second", "mfu", "note", "error")}
        for row in rows]}))
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
