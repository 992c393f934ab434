"""Gold evaluation of a loop's models, in and out of distribution. A subprocess: torch, never Django.

    python -m training.simulation.scoring --config scoring.json

scoring.json: {"policies": {"base": DIR, "sft": DIR, "rlhf": DIR, "dpo": DIR}, "reward_model": DIR,
               "baseline": "sft", "n_prompts": 128, "seed": 10001, "temperature": 0.7, "top_p": 0.95,
               "max_new_tokens": 32, "rm_k": 4, "rm_synthetic_pairs": 200, "adversarial_prompts": 40,
               "kl_curve": {"policy": "rlhf", "points": [[10, DIR], [20, DIR]], "n_prompts": 64},
               "output": "scores.json"}

Two prompt sets of n_prompts each, drawn fresh: in distribution (the training templates and topics)
and out of distribution (held-out templates and topics no training set contains; see synthetic.py).
It writes (and prints as the last line) a JSON object:
- gold[name] / gold_in[name]: mean and std of the gold score of one sample per out-of-distribution /
  in-distribution prompt (the same prompts and sampling seed for every model);
- gold_win_rate[name] / gold_win_rate_in[name]: the gold function's win rate of each policy against
  the baseline, per prompt, ties counted half, with a 95% Wilson interval (out / in distribution);
- diversity[name]: distinct-1, distinct-2 and self-BLEU of the policy's out-of-distribution samples;
- gold_terms[name]: the mean of each gold term over those samples (warmth, stacked, repeated, ...);
- reward_accuracy: the reward model's pairwise accuracy against the GOLD preference on pairs of the
  baseline's own K samples (the distribution it was trained on) for the in-distribution prompts
  (`in_distribution`) and the out-of-distribution ones (`out_of_distribution`), on the synthetic
  task's candidate pairs (`synthetic`), and on adversarial pairs (`adversarial`: a best answer
  against an empty, repeated-word, stacked-adjective, cut-off or bare-list answer, per kind);
- kl_curve: for the RLHF run's checkpoints (SFT as step 0), the mean gold score, the mean proxy
  reward (the reward model's score) and the mean sequence KL to SFT of their samples;
- samples[name]: the first SAMPLES_SHOWN out-of-distribution answers of each model, for the report.
"""

from __future__ import annotations

import argparse
import json
import math
from itertools import combinations
from pathlib import Path

from training.pipelines import evaluate, synthetic

from .diversity import diversity

TIE_GAP = min(threshold for threshold, _, _ in synthetic.STRENGTHS)
SAMPLES_SHOWN = 24


def _mean_std(values: list[float]) -> dict:
    if not values:
        return {"gold_mean": None, "gold_std": None, "n": 0}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))
    return {"gold_mean": mean, "gold_std": std, "n": len(values)}


class RewardModel:
    """The loop's reward model, loaded once: score(prompt, response) for many pairs."""

    def __init__(self, model_dir: str):
        from transformers import AutoModelForSequenceClassification

        from training.pipelines import common

        self.tokenizer = common.load_tokenizer(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1).eval()
        self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def score(self, prompts: list[list[dict]], responses: list[str]) -> list[float]:
        from training.pipelines.reward import score

        return score(self.model, self.tokenizer,
                     [p + [{"role": "assistant", "content": r}] for p, r in zip(prompts, responses)])

    def accuracy(self, pairs: list[tuple[list[dict], str, str]]) -> dict:
        """Share of (prompt, better, worse) pairs where the model scores `better` higher (ties half)."""
        if not pairs:
            return {"accuracy": None, "pairs": 0}
        better = self.score([p for p, _, _ in pairs], [b for _, b, _ in pairs])
        worse = self.score([p for p, _, _ in pairs], [w for _, _, w in pairs])
        wins = sum(1.0 if b > w else 0.5 if b == w else 0.0 for b, w in zip(better, worse))
        return {"accuracy": wins / len(pairs), "pairs": len(pairs)}


def gold_terms(prompts: list, texts: list[str]) -> dict[str, float]:
    """The mean of each gold term (synthetic.gold_parts) over a model's answers: where its score comes from."""
    totals: dict[str, float] = {}
    for prompt, text in zip(prompts, texts):
        for term, value in synthetic.gold_parts(prompt, text).items():
            totals[term] = totals.get(term, 0.0) + value
    return {term: value / len(texts) for term, value in totals.items()} if texts else {}


def reward_accuracy(model_dir: str, pairs: list[tuple[list[dict], str, str]]) -> dict:
    return RewardModel(model_dir).accuracy(pairs)


def gold_pairs(prompts: list, responses: list[list[str]]) -> list[tuple[list[dict], str, str]]:
    """Every pair of a prompt's responses that the gold function separates, as (prompt, better, worse)."""
    pairs = []
    for prompt, texts in zip(prompts, responses):
        for a, b in combinations(texts, 2):
            gap = synthetic.gold_score(prompt, a) - synthetic.gold_score(prompt, b)
            if abs(gap) >= TIE_GAP:
                pairs.append((prompt, a, b) if gap > 0 else (prompt, b, a))
    return pairs


def adversarial_accuracy(rm: RewardModel, n_prompts: int, seed: int) -> dict:
    """How often the reward model ranks a best answer above each kind of gamed answer (out of distribution)."""
    rows = synthetic.adversarial_pairs(n_prompts, seed=seed, split="heldout")
    out: dict = {}
    for kind in synthetic.ADVERSARIAL_KINDS:
        mine = [(r["prompt"], r["good"], r["bad"]) for r in rows if r["kind"] == kind]
        out[kind] = rm.accuracy(mine)
    out["all"] = rm.accuracy([(r["prompt"], r["good"], r["bad"]) for r in rows])
    return out


def sequence_logprobs(model, tokenizer, prompts: list[list[dict]], responses: list[str],
                      batch_size: int = 32) -> list[float]:
    """log p(response + end of turn | prompt) under a causal LM, one float per pair."""
    import torch

    out: list[float] = []
    for start in range(0, len(prompts), batch_size):
        rows = []
        for prompt, response in zip(prompts[start:start + batch_size], responses[start:start + batch_size]):
            head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": response}], tokenize=False)
            head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
            full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
            rows.append((full_ids, len(head_ids)))
        width = max(len(ids) for ids, _ in rows)
        pad = tokenizer.pad_token_id or 0
        ids = torch.tensor([r + [pad] * (width - len(r)) for r, _ in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in rows])
        with torch.no_grad():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(model.device).unsqueeze(-1))[..., 0]
        for i, (r, head_len) in enumerate(rows):
            out.append(float(logp[i, head_len - 1:len(r) - 1].sum()))
    return out


def kl_curve(cfg: dict, baseline_path: str, rm: RewardModel | None, sampling: dict, seed: int) -> list[dict]:
    """Gold score, proxy reward and KL to the baseline of samples along the RLHF run (baseline = step 0)."""
    from transformers import AutoModelForCausalLM

    from training.pipelines import common
    from training.pipelines.generate import generate, load_model

    spec = cfg.get("kl_curve") or {}
    points = [(0, baseline_path)] + [(int(step), path) for step, path in spec.get("points") or []]
    if len(points) < 2:
        return []
    prompts = synthetic.make_prompts(int(spec.get("n_prompts", 64)), seed=seed + 7, split="train")
    reference = AutoModelForCausalLM.from_pretrained(baseline_path).eval()
    ref_tokenizer = common.load_tokenizer(baseline_path)
    curve = []
    for step, path in points:
        loaded = load_model(path)
        texts = [t[0] if t else "" for t in generate(path, prompts, k=1, seed=seed + 7, max_rounds=1, loaded=loaded,
                                                    **sampling)]
        model, tokenizer, _ = loaded
        own = sequence_logprobs(model.float(), tokenizer, prompts, texts)
        ref = sequence_logprobs(reference, ref_tokenizer, prompts, texts)
        gold = [synthetic.gold_score(p, t) for p, t in zip(prompts, texts)]
        proxy = rm.score(prompts, texts) if rm is not None else []
        curve.append({
            "step": step, "kl": sum(o - r for o, r in zip(own, ref)) / len(texts),
            "gold": sum(gold) / len(gold), "proxy": sum(proxy) / len(proxy) if proxy else None,
            "distinct_2": diversity(texts)["distinct_2"], "n": len(texts),
        })
        del loaded, model
    return curve


def run(cfg: dict) -> dict:
    from training.pipelines.generate import generate, load_model

    seed = int(cfg.get("seed", 10001))
    n = int(cfg.get("n_prompts", 64))
    sets = {"out": synthetic.make_prompts(n, seed=seed, split="heldout"),
            "in": synthetic.make_prompts(n, seed=seed + 3, split="train")}
    sampling = dict(temperature=float(cfg.get("temperature", 0.7)), top_p=float(cfg.get("top_p", 0.95)),
                    max_new_tokens=int(cfg.get("max_new_tokens", 32)))
    baseline = cfg.get("baseline", "sft")
    answers: dict[str, dict[str, list[str]]] = {"out": {}, "in": {}}
    out: dict = {"prompts": n, "gold": {}, "gold_in": {}, "gold_win_rate": {}, "gold_win_rate_in": {},
                 "diversity": {}, "gold_terms": {}, "samples": {}, "reward_accuracy": {}, "kl_curve": []}
    rm_samples: dict[str, list[list[str]]] = {}
    for name, path in cfg.get("policies", {}).items():
        if not path:
            continue
        loaded = load_model(path)
        for where, prompts in sets.items():
            texts = generate(path, prompts, k=1, seed=seed, max_rounds=1, loaded=loaded, **sampling)
            answers[where][name] = [t[0] if t else "" for t in texts]
            if name == baseline and cfg.get("reward_model"):
                # The reward model's own distribution: K samples of the policy it was trained to judge.
                rm_samples[where] = generate(path, prompts, k=int(cfg.get("rm_k", 4)), seed=seed + 1,
                                             temperature=1.0, top_p=0.95, max_new_tokens=sampling["max_new_tokens"],
                                             max_rounds=2, loaded=loaded)
        scored = {where: [synthetic.gold_score(p, a) for p, a in zip(sets[where], answers[where][name])]
                  for where in sets}
        out["gold"][name] = _mean_std(scored["out"])
        out["gold_in"][name] = _mean_std(scored["in"])
        out["diversity"][name] = diversity(answers["out"][name], synthetic.known_words())
        out["gold_terms"][name] = gold_terms(sets["out"], answers["out"][name])
        out["samples"][name] = [
            {"prompt": synthetic.prompt_text(p), "response": a, "gold": g}
            for p, a, g in list(zip(sets["out"], answers["out"][name], scored["out"]))[:SAMPLES_SHOWN]
        ]
        del loaded
    if baseline in answers["out"]:
        for name in answers["out"]:
            if name != baseline:
                out["gold_win_rate"][name] = evaluate.gold_win_rate(sets["out"], answers["out"][name],
                                                                    answers["out"][baseline])
                out["gold_win_rate_in"][name] = evaluate.gold_win_rate(sets["in"], answers["in"][name],
                                                                       answers["in"][baseline])
    rm = RewardModel(cfg["reward_model"]) if cfg.get("reward_model") else None
    if rm is not None:
        accuracy = out["reward_accuracy"]
        if "in" in rm_samples:
            accuracy["in_distribution"] = rm.accuracy(gold_pairs(sets["in"], rm_samples["in"]))
            accuracy["policy_samples"] = accuracy["in_distribution"]  # the name older reports used
        if "out" in rm_samples:
            accuracy["out_of_distribution"] = rm.accuracy(gold_pairs(sets["out"], rm_samples["out"]))
        rows = synthetic.preference_rows(int(cfg.get("rm_synthetic_pairs", 200)), seed=seed + 2)
        accuracy["synthetic"] = rm.accuracy([(r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"])
                                             for r in rows])
        accuracy["adversarial"] = adversarial_accuracy(rm, int(cfg.get("adversarial_prompts", 40)), seed + 5)
    baseline_path = (cfg.get("policies") or {}).get(baseline)
    if cfg.get("kl_curve") and baseline_path:
        out["kl_curve"] = kl_curve(cfg, baseline_path, rm, sampling, seed)
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
