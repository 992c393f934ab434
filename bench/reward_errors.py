"""Where a reward model disagrees with gold: its accuracy by gold's gap and by which gold term tells a pair apart.

    .venv/bin/python bench/reward_errors.py --sft DIR --reward DIR [--prompts 128] [--seed 10001]

Samples K answers per in-distribution prompt from the SFT model with the loop's round-1 settings
(LoopConfig: k, gen_temperature, gen_top_p, max_new_tokens; the reward model's own distribution), makes every pair gold separates
(training/simulation/scoring.gold_pairs), and scores both answers with the reward model. Pairs
whose gold parts (synthetic.gold_parts) differ in one term only are grouped by that term; the
rest are "several". Prints one JSON object. Not a test: it reads trained models.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reward_ood import loop_defaults  # noqa: E402
from training.pipelines import synthetic  # noqa: E402
from training.simulation import scoring  # noqa: E402


def accuracy_table(groups: dict) -> dict:
    return {str(key): {"pairs": n, "accuracy": round(right / n, 3)} for key, (right, n) in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    from training.pipelines.generate import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft", required=True)
    parser.add_argument("--reward", required=True)
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--seed", type=int, default=10_001)
    args = parser.parse_args(argv)

    prompts = synthetic.make_prompts(args.prompts, seed=args.seed + 2, split="train")
    loop = loop_defaults()
    texts = generate(args.sft, prompts, k=loop.k, seed=args.seed, temperature=loop.gen_temperature,
                     top_p=loop.gen_top_p, max_new_tokens=loop.max_new_tokens, max_rounds=1)
    pairs = scoring.gold_pairs(prompts, texts)
    rm = scoring.RewardModel(args.reward)
    better = rm.score([p for p, _, _ in pairs], [a for _, a, _ in pairs])
    worse = rm.score([p for p, _, _ in pairs], [b for _, _, b in pairs])
    by_gap: dict = defaultdict(lambda: [0, 0])
    by_term: dict = defaultdict(lambda: [0, 0])
    for (prompt, a, b), score_a, score_b in zip(pairs, better, worse):
        right = score_a > score_b
        gap = min(synthetic.gold_score(prompt, a) - synthetic.gold_score(prompt, b), 3.0)
        parts_a, parts_b = synthetic.gold_parts(prompt, a), synthetic.gold_parts(prompt, b)
        differ = [term for term in parts_a if abs(parts_a[term] - parts_b[term]) > 1e-9]
        for groups, key in ((by_gap, round(gap, 2)), (by_term, differ[0] if len(differ) == 1 else "several")):
            groups[key][0] += right
            groups[key][1] += 1
    right = sum(r for r, _ in by_gap.values())
    print(json.dumps({"pairs": len(pairs), "accuracy": round(right / len(pairs), 3) if pairs else None,
                      "by_gold_gap": accuracy_table(by_gap), "by_term": accuracy_table(by_term)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
