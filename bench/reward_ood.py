"""A quick proxy for the full loop's reward model: train it alone and score it in and out of distribution.

    .venv/bin/python bench/reward_ood.py --sft DIR --out DIR [--noise 0.2] [--prompts 240]
        [--topics 20] [--templates 4] [--set learning_rate=2e-4 --set max_steps=300 ...]
    .venv/bin/python bench/reward_ood.py --sft DIR --reward DIR --out DIR   (score a loop's reward model)

The full loop takes a quarter of an hour; its reward model is one stage of it. This script does
what the loop does for that stage, without the platform, from the loop's SFT model (model dir):

1. `--prompts` training-split prompts (the first `--topics` topics and `--templates` templates of
   synthetic.SPLITS["train"], so a broader split can be compared with the old one), K answers each
   from the SFT model at the loop's sampling settings;
2. each prompt's answers ranked as the simulated labelers rank them (labelers.gold_ranking,
   reversed with probability `--noise`), and turned into pairs with the export's margins (with
   `--ties`, the loop's default, tied answers also as pairs both ways at margin 0);
3. a reward model trained by the reward pipeline with the loop's reward settings, plus `--set`;
4. its gold accuracy on pairs of fresh SFT samples, in distribution and out of distribution,
   exactly as the loop's gold scoring measures it (scoring.gold_pairs), and the share of
   out-of-distribution errors by the gold term that separates the pair.

Prints one JSON object. Not a test: it trains a model, and the figures depend on the seed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotation import export_pairs  # noqa: E402  (plain Python: no Django)
from training.pipelines import reward, synthetic  # noqa: E402
from training.pipelines.common import config_from_dict  # noqa: E402
from training.simulation import labelers, scoring  # noqa: E402


def loop_defaults():
    """The full loop's LoopConfig (its module needs Django's settings, though nothing here uses the database)."""
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    django.setup()
    from training.simulation.full_loop import LoopConfig

    return LoopConfig()


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def train_prompts(*, n: int, seed: int, topics: int, templates: int) -> list[list[dict]]:
    all_templates, all_topics = synthetic.SPLITS["train"]
    rng = random.Random(seed)
    chosen_templates, chosen_topics = all_templates[:templates], all_topics[:topics]
    return [[{"role": "user", "content": rng.choice(chosen_templates).format(topic=rng.choice(chosen_topics))}]
            for _ in range(n)]


def preference_rows(prompts, answers, *, noise: float, seed: int, ties: bool = False) -> list[dict]:
    """The export's pairs of each prompt's gold ranking (a noisy labeler reverses it), as TRL rows."""
    rng = random.Random(seed)
    rows = []
    for prompt, texts in zip(prompts, answers):
        responses = [{"id": i, "text": t} for i, t in enumerate(texts)]
        ranking = labelers.gold_ranking(messages=prompt, responses=responses)
        if len(ranking) > 1 and rng.random() < noise:
            ranking = list(reversed(ranking))
        for better, worse, margin in export_pairs.ranking_pairs(ranking=ranking, ties=ties):
            if texts[better] == texts[worse]:  # the platform keeps one response per distinct text
                continue
            rows.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": texts[better]}],
                         "rejected": [{"role": "assistant", "content": texts[worse]}], "margin": margin})
    return rows


def error_terms(rm: scoring.RewardModel, pairs) -> dict[str, float]:
    """Of the pairs the reward model gets wrong, the share whose gold gap includes each term."""
    better = rm.score([p for p, _, _ in pairs], [b for _, b, _ in pairs])
    worse = rm.score([p for p, _, _ in pairs], [w for _, _, w in pairs])
    counts: dict[str, int] = {}
    wrong = 0
    for (prompt, b, w), sb, sw in zip(pairs, better, worse):
        if sb > sw:
            continue
        wrong += 1
        gb, gw = synthetic.gold_parts(prompt, b), synthetic.gold_parts(prompt, w)
        for term in gb:
            if gb[term] != gw[term]:
                counts[term] = counts.get(term, 0) + 1
    return {"wrong": wrong, **{t: round(c / max(1, wrong), 3) for t, c in sorted(counts.items())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft", required=True, help="The loop's SFT model dir.")
    parser.add_argument("--out", required=True)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--prompts", type=int, default=240)
    parser.add_argument("--topics", type=int, default=len(synthetic.SPLITS["train"][1]))
    parser.add_argument("--templates", type=int, default=len(synthetic.TRAIN_TEMPLATES))
    parser.add_argument("--score-prompts", type=int, default=128)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--ties", action=argparse.BooleanOptionalAction, default=None,
                        help="Also train on tied answers, as pairs in both orders (default: as the loop, reward_data).")
    parser.add_argument("--reward", help="Only score this reward model dir (a loop's), without training one.")
    args = parser.parse_args()
    from training.pipelines.generate import generate, load_model

    loop = loop_defaults()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    loaded = load_model(args.sft)
    if args.reward:  # score a reward model that a loop trained
        return report_accuracy(args, loop, loaded, args.reward, {"reward": args.reward}, started)
    prompts = train_prompts(n=args.prompts, seed=1, topics=args.topics, templates=args.templates)
    answers = generate(args.sft, prompts, k=loop.k, temperature=loop.gen_temperature, top_p=loop.gen_top_p,
                       max_new_tokens=loop.max_new_tokens, seed=loop.seed, loaded=loaded)
    ties = loop.reward_data.get("ties", False) if args.ties is None else args.ties
    rows = preference_rows(prompts, answers, noise=args.noise, seed=7, ties=ties)
    train_file = out / "preferences.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = {k: v for k, v in loop.reward.items() if k != "logging_steps"}
    settings.update({k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)})
    cfg = config_from_dict(reward.RewardPipelineConfig, {
        **settings, "model_path": args.sft, "train_file": str(train_file), "output_dir": str(out / "rm"),
        "resume": False, "logging_steps": 50,
    })
    trained_at = time.monotonic()
    metrics = reward.run(cfg)
    train_seconds = time.monotonic() - trained_at

    return report_accuracy(args, loop, loaded, str(out / "rm" / "model"), {
        "settings": settings, "noise": args.noise, "ties": ties, "pairs": len(rows), "topics": args.topics,
        "templates": args.templates, "eval_accuracy": metrics.get("eval_accuracy"),
        "train_seconds": round(train_seconds, 1)}, started)


def report_accuracy(args, loop, loaded, reward_dir: str, result: dict, started: float) -> int:
    """Print the reward model's gold accuracy on fresh SFT samples, in and out of distribution (as the loop scores)."""
    from training.pipelines.generate import generate

    rm = scoring.RewardModel(reward_dir)
    seed = 10_001
    for where, split, offset in (("out", "heldout", 0), ("in", "train", 3)):
        score_prompts = synthetic.make_prompts(args.score_prompts, seed=seed + offset, split=split)
        samples = generate(args.sft, score_prompts, k=loop.k, seed=seed + 1, temperature=1.0, top_p=0.95,
                           max_new_tokens=loop.max_new_tokens, max_rounds=2, loaded=loaded)
        pairs = scoring.gold_pairs(score_prompts, samples)
        result[f"accuracy_{where}"] = rm.accuracy(pairs)["accuracy"]
        result[f"errors_{where}"] = error_terms(rm, pairs)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
