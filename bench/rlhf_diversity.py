"""A quick proxy for the full loop's RLHF stage: RLOO alone from its SFT and reward models, then gold and diversity.

    .venv/bin/python bench/rlhf_diversity.py --sft DIR --reward DIR --out DIR [--set beta=0.3 ...]

Trains the RLHF pipeline with the loop's settings (LoopConfig.rlhf, plus `--set`) on the loop's
training prompts, then runs the loop's gold scoring (training/simulation/scoring.py) on SFT and
the new policy: gold win rate against SFT in and out of distribution, and each model's
distinct-2 (plain, and without garbled words), so a setting can be chosen for both targets
before a full loop confirms it. It also samples each model's second round as the loop does (K
answers per held-out prompt at the loop's generation settings) and gives the share of prompts
whose answers the simulated labelers would rank all tied (labelers.gold_ranking in one group).

Prints one JSON object. Not a test: it trains a model, and the figures depend on the seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reward_ood import loop_defaults, parse_value  # noqa: E402
from training.pipelines import rlhf, synthetic  # noqa: E402
from training.pipelines.common import config_from_dict  # noqa: E402
from training.simulation import labelers, scoring  # noqa: E402


def all_tied_share(model_dir: str, loop, n_prompts: int) -> float:
    """The share of n held-out prompts whose K answers (the loop's round-2 sampling) gold ranks all tied."""
    from training.pipelines.generate import generate

    prompts = synthetic.make_prompts(n_prompts, seed=20_000 + loop.seed, split="heldout")
    answers = generate(model_dir, prompts, k=loop.k, seed=loop.seed, temperature=loop.gen_temperature,
                       top_p=loop.gen_top_p, max_new_tokens=loop.max_new_tokens, max_rounds=2)
    tied = 0
    for prompt, texts in zip(prompts, answers):
        responses = [{"id": i, "text": text} for i, text in enumerate(texts)]
        tied += len(responses) > 1 and len(labelers.gold_ranking(messages=prompt, responses=responses)) == 1
    return tied / len(prompts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft", required=True)
    parser.add_argument("--reward", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--score-prompts", type=int, default=128)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    loop = loop_defaults()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    prompts = synthetic.make_prompts(loop.demo_prompts, seed=1 + loop.seed, split="train")
    prompts_file = out / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    settings = {k: v for k, v in loop.rlhf.items() if k not in ("save_steps", "save_total_limit", "logging_steps")}
    settings.update({k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)})
    cfg = config_from_dict(rlhf.RlhfPipelineConfig, {
        **settings, "model_path": args.sft, "reward_model_path": args.reward, "prompts_file": str(prompts_file),
        "output_dir": str(out / "rlhf"), "resume": False, "logging_steps": 10, "save_steps": 1000,
    })
    metrics = rlhf.run(cfg)
    trained = time.monotonic() - started
    scores = scoring.run({
        "policies": {"sft": args.sft, "rlhf": str(out / "rlhf" / "model")}, "baseline": "sft",
        "n_prompts": args.score_prompts, "seed": 10_000 + loop.seed, "temperature": loop.eval_temperature,
        "top_p": 0.95, "max_new_tokens": loop.max_new_tokens,
    })
    d2 = {name: scores["diversity"][name]["distinct_2"] for name in ("sft", "rlhf")}
    known = {name: scores["diversity"][name].get("distinct_2_known") for name in ("sft", "rlhf")}
    tied = {name: all_tied_share(path, loop, loop.round2_prompts)
            for name, path in (("sft", args.sft), ("rlhf", str(out / "rlhf" / "model")))}
    print(json.dumps({
        "settings": settings, "train_seconds": round(trained, 1), "seconds": round(time.monotonic() - started, 1),
        "kl": metrics.get("kl"), "reward": metrics.get("reward"),
        "win_out": scores["gold_win_rate"]["rlhf"]["win_rate"], "win_in": scores["gold_win_rate_in"]["rlhf"]["win_rate"],
        "gold": {name: scores["gold"][name]["gold_mean"] for name in ("sft", "rlhf")},
        "distinct_2": d2, "distinct_2_ratio": d2["rlhf"] / d2["sft"] if d2["sft"] else None,
        "distinct_2_known_ratio": known["rlhf"] / known["sft"] if known["sft"] and known["rlhf"] is not None else None,
        "round2_all_tied": tied, "terms_rlhf": scores["gold_terms"]["rlhf"],
        "samples_rlhf": [s["response"] for s in scores["samples"]["rlhf"][:12]],
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
