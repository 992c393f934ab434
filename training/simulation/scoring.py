"""Gold evaluation of a loop's models on held-out synthetic prompts. A subprocess: torch, never Django.

    python -m training.simulation.scoring --config scoring.json

scoring.json: {"policies": {"base": DIR, "sft": DIR, "rlhf": DIR, "dpo": DIR}, "reward_model": DIR,
               "baseline": "sft", "n_prompts": 64, "seed": 10001, "temperature": 0.7, "top_p": 0.95,
               "max_new_tokens": 32, "rm_k": 4, "rm_synthetic_pairs": 200, "output": "scores.json"}

It writes (and prints as the last line) a JSON object:
- gold[name]: mean and std of the gold score of one sample per held-out prompt (the same prompts
  and sampling seed for every model);
- gold_win_rate[name]: the gold function's win rate of each policy against the baseline, per
  prompt, ties counted half, with a 95% Wilson interval;
- reward_accuracy: the reward model's pairwise accuracy against the GOLD preference on
  (a) pairs of the baseline's own samples on held-out prompts (the distribution it was trained on)
  and (b) the synthetic task's candidate pairs (positive, neutral, negative, degenerate answers);
- samples[name]: a few of each model's answers, for the report.
"""

from __future__ import annotations

import argparse
import json
import math
from itertools import combinations
from pathlib import Path

from training.pipelines import evaluate, synthetic

TIE_GAP = min(threshold for threshold, _, _ in synthetic.STRENGTHS)
SAMPLES_SHOWN = 6


def _mean_std(values: list[float]) -> dict:
    if not values:
        return {"gold_mean": None, "gold_std": None, "n": 0}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))
    return {"gold_mean": mean, "gold_std": std, "n": len(values)}


def reward_accuracy(model_dir: str, pairs: list[tuple[list[dict], str, str]]) -> dict:
    """Share of (prompt, better, worse) pairs where the reward model scores `better` higher (ties half)."""
    if not pairs:
        return {"accuracy": None, "pairs": 0}
    from transformers import AutoModelForSequenceClassification

    from training.pipelines import common
    from training.pipelines.reward import score

    tokenizer = common.load_tokenizer(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1).eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    better = score(model, tokenizer, [p + [{"role": "assistant", "content": b}] for p, b, _ in pairs])
    worse = score(model, tokenizer, [p + [{"role": "assistant", "content": w}] for p, _, w in pairs])
    wins = sum(1.0 if b > w else 0.5 if b == w else 0.0 for b, w in zip(better, worse))
    return {"accuracy": wins / len(pairs), "pairs": len(pairs)}


def gold_pairs(prompts: list, responses: list[list[str]]) -> list[tuple[list[dict], str, str]]:
    """Every pair of a prompt's responses that the gold function separates, as (prompt, better, worse)."""
    pairs = []
    for prompt, texts in zip(prompts, responses):
        for a, b in combinations(texts, 2):
            gap = synthetic.gold_score(prompt, a) - synthetic.gold_score(prompt, b)
            if abs(gap) >= TIE_GAP:
                pairs.append((prompt, a, b) if gap > 0 else (prompt, b, a))
    return pairs


def run(cfg: dict) -> dict:
    from training.pipelines.generate import generate, load_model

    prompts = synthetic.make_prompts(int(cfg.get("n_prompts", 64)), seed=int(cfg.get("seed", 10001)))
    sampling = dict(temperature=float(cfg.get("temperature", 0.7)), top_p=float(cfg.get("top_p", 0.95)),
                    max_new_tokens=int(cfg.get("max_new_tokens", 32)))
    baseline = cfg.get("baseline", "sft")
    answers: dict[str, list[str]] = {}
    out: dict = {"prompts": len(prompts), "gold": {}, "gold_win_rate": {}, "samples": {}, "reward_accuracy": {}}
    rm_samples = None
    for name, path in cfg.get("policies", {}).items():
        if not path:
            continue
        loaded = load_model(path)
        texts = generate(path, prompts, k=1, seed=int(cfg.get("seed", 10001)), max_rounds=1, loaded=loaded,
                         **sampling)
        answers[name] = [t[0] if t else "" for t in texts]
        out["gold"][name] = _mean_std([synthetic.gold_score(p, a) for p, a in zip(prompts, answers[name])])
        out["samples"][name] = [
            {"prompt": synthetic.prompt_text(p), "response": a, "gold": synthetic.gold_score(p, a)}
            for p, a in list(zip(prompts, answers[name]))[:SAMPLES_SHOWN]
        ]
        if name == baseline and cfg.get("reward_model"):
            # The reward model's own distribution: K samples of the policy it was trained to judge.
            rm_samples = generate(path, prompts, k=int(cfg.get("rm_k", 4)), seed=int(cfg.get("seed", 10001)) + 1,
                                  temperature=1.0, top_p=0.95, max_new_tokens=sampling["max_new_tokens"],
                                  max_rounds=2, loaded=loaded)
        del loaded
    if baseline in answers:
        for name, texts in answers.items():
            if name != baseline:
                out["gold_win_rate"][name] = evaluate.gold_win_rate(prompts, texts, answers[baseline])
    if cfg.get("reward_model"):
        if rm_samples is not None:
            out["reward_accuracy"]["policy_samples"] = reward_accuracy(cfg["reward_model"], gold_pairs(prompts, rm_samples))
        rows = synthetic.preference_rows(int(cfg.get("rm_synthetic_pairs", 200)), seed=int(cfg.get("seed", 10001)) + 2)
        synthetic_pairs = [(r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows]
        out["reward_accuracy"]["synthetic"] = reward_accuracy(cfg["reward_model"], synthetic_pairs)
    if cfg.get("output"):
        Path(cfg["output"]).write_text(json.dumps(out, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gold evaluation of a loop's models on held-out synthetic prompts.")
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    result = run(json.loads(Path(args.config).read_text()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
