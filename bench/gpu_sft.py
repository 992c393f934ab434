"""SFT throughput on a GPU: tokens/second and model FLOPs utilisation (MFU) of the sft pipeline.

    python bench/gpu_sft.py [--hidden 1024 --layers 16 --batch-size 16 --seq-len 1024 --steps 40]

Builds a Llama-style model of the given shape with the tiny byte-level tokenizer (everything
offline), writes long multi-turn synthetic chats, and runs training.pipelines.sft on cuda with
bf16 where supported. Timing starts after --warmup steps, from the progress events the pipeline
prints. FLOPs are estimated as 6 * parameters * tokens; the peak is 989e12 (H100/H200 bf16 dense)
unless the GPU is recognised as another kind or --peak-flops is given.
Without a GPU it says so and exits 0.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "GH200": 989e12, "A100": 312e12,
             "A800": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 70e12, "B200": 2250e12}


def peak_flops(name: str) -> float:
    for key in sorted(PEAK_BF16, key=len, reverse=True):
        if key in name.upper():
            return PEAK_BF16[key]
    return 989e12


class StampedStdout(io.TextIOBase):
    """Passes stdout through and records (time, event) for each JSON progress line."""

    def __init__(self, inner):
        self.inner, self.buffer_text, self.events = inner, "", []

    def write(self, text):
        self.inner.write(text)
        self.buffer_text += text
        while "\n" in self.buffer_text:
            line, self.buffer_text = self.buffer_text.split("\n", 1)
            if line.startswith("{"):
                try:
                    self.events.append((time.perf_counter(), json.loads(line)))
                except json.JSONDecodeError:
                    pass
        return len(text)

    def flush(self):
        self.inner.flush()


def build_model(path: Path, hidden: int, layers: int, seq_len: int) -> int:
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.pipelines import base_model

    paragraphs, dialogues = base_model.bundled_texts()
    tokenizer = base_model.train_tokenizer(paragraphs + [m["content"] for d in dialogues for m in d])
    tokenizer.model_max_length = seq_len
    heads = max(1, hidden // 64)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=int(hidden * 8 / 3) // 64 * 64,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=seq_len, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def write_long_chats(path: Path, n: int, turns: int, seed: int = 0) -> None:
    from training.pipelines import synthetic

    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            messages = []
            for _ in range(turns):
                prompt = synthetic.make_prompt(rng)
                messages += prompt + [{"role": "assistant",
                                       "content": synthetic.make_response(rng, synthetic.topic_of(prompt), 1)}]
            f.write(json.dumps({"messages": messages}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10, help="Steps excluded from the timing.")
    parser.add_argument("--peak-flops", type=float, default=None, help="Override the GPU's bf16 peak.")
    args = parser.parse_args()
    if not 0 <= args.warmup < args.steps - 1:
        parser.error("--warmup must be smaller than --steps - 1")

    import torch

    if not torch.cuda.is_available():
        print("no GPU found: bench/gpu_sft.py measures cuda training only; skipping.")
        return 0
    name = torch.cuda.get_device_name(0)
    peak = args.peak_flops or peak_flops(name)

    from training.pipelines import common, sft

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        params = build_model(root / "base", args.hidden, args.layers, args.seq_len)
        # ~11 tokens per turn pair is not enough to fill the sequence, so use many turns.
        write_long_chats(root / "train.jsonl", n=args.batch_size * (args.steps + 2), turns=args.seq_len // 20)
        cfg = sft.SftPipelineConfig(
            model_path=str(root / "base"), train_file=str(root / "train.jsonl"), output_dir=str(root / "run"),
            max_steps=args.steps, batch_size=args.batch_size, max_length=args.seq_len, learning_rate=3e-4,
            logging_steps=1, save_steps=common.MAX_STEPS, save_total_limit=None, seed=0,  # no checkpoint mid-run
        )
        stamped = StampedStdout(sys.stdout)
        real_stdout, sys.stdout = sys.stdout, stamped
        try:
            sft.run(cfg)
        finally:
            sys.stdout = real_stdout
    progress = [(t, e) for t, e in stamped.events
                if e.get("event") == "progress" and "num_tokens" in e.get("metrics", {})]
    start = next((t, e) for t, e in progress if e["step"] >= args.warmup)
    end = progress[-1]
    tokens = end[1]["metrics"]["num_tokens"] - start[1]["metrics"]["num_tokens"]
    seconds = end[0] - start[0]
    tokens_per_second = tokens / seconds
    mfu = 6 * params * tokens_per_second / peak
    result = {"event": "bench", "gpu": name, "bf16": torch.cuda.is_bf16_supported(), "parameters": params,
              "batch_size": args.batch_size, "seq_len": args.seq_len, "timed_steps": end[1]["step"] - start[1]["step"],
              "tokens": tokens, "seconds": round(seconds, 3), "tokens_per_second": round(tokens_per_second, 1),
              "peak_flops": peak, "mfu": round(mfu, 4),
              "max_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    print(json.dumps(result))
    print(f"{name}: {tokens_per_second:,.0f} tokens/s, MFU {mfu:.1%} "
          f"(6 x {params / 1e6:.0f}M params x tokens / {peak / 1e12:.0f} TFLOPs peak)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
