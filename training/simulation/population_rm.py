"""The population experiment's reward models: one per export, each scored on the same held-out gold pairs.

    python -m training.simulation.population_rm --config rm.json

A subprocess of `manage.py simulate --population` (torch, never Django). rm.json:

    {"base_model": DIR, "heldout": FILE, "work_dir": DIR, "seeds": [0, 1, 2], "output": FILE,
     "reward": {"max_steps": 150, "batch_size": 16, ...},       # the same for every variant
     "variants": {"clean": FILE, "unfiltered": FILE, "filtered": FILE, ...}}

Each variant trains the reward pipeline (training.pipelines.reward, TRL's RewardTrainer) from the
same base model with the same settings and number of steps, on its preference export, once per
seed (the seed draws the value head and the batches). One tiny reward model's accuracy moves by
several points from seed to seed, more than some of the differences the experiment measures, so
a variant's figure is the mean over the seeds, and each seed's figure is kept beside it. The
held-out file is passed as the pipeline's eval_file, so its `eval_accuracy` is the model's
pairwise accuracy against the gold function on pairs whose prompts no variant trained on. It
writes (and prints as the last line) {variant: {"rows", "gold_accuracy", "gold_accuracies",
"seeds", "pairs", "steps", "seconds", "loss"}}. ("seed": N in place of "seeds" trains one.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from training.pipelines import common, reward


def _rows(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def seeds_of(cfg: dict) -> list[int]:
    seeds = cfg.get("seeds")
    return [int(s) for s in seeds] if seeds else [int(cfg.get("seed", 0))]


def train_one(*, name: str, train_file: str, cfg: dict) -> dict:
    """The variant's reward model once per seed; its gold accuracy is the mean of theirs."""
    rows = _rows(train_file)
    if rows == 0:
        return {"rows": 0, "gold_accuracy": None, "pairs": 0, "steps": 0, "seconds": 0.0,
                "error": "the export is empty"}
    seeds = seeds_of(cfg)
    accuracies, losses, pairs, steps = [], [], None, 0
    started = time.monotonic()
    for seed in seeds:
        run_cfg = common.config_from_dict(reward.RewardPipelineConfig, {
            **cfg.get("reward", {}), "model_path": cfg["base_model"], "train_file": train_file,
            "output_dir": str(Path(cfg["work_dir"]) / (name if len(seeds) == 1 else f"{name}-seed{seed}")),
            "eval_file": cfg["heldout"], "seed": seed, "resume": False,
        })
        metrics = reward.run(run_cfg)
        accuracies.append(metrics.get("eval_accuracy"))
        losses.append(metrics.get("loss"))
        pairs, steps = metrics.get("eval_pairs"), run_cfg.max_steps
    known = [a for a in accuracies if a is not None]
    return {
        "rows": rows, "gold_accuracy": statistics.fmean(known) if known else None, "gold_accuracies": accuracies,
        "seeds": seeds, "pairs": pairs, "steps": steps, "seconds": round(time.monotonic() - started, 1),
        "loss": statistics.fmean([x for x in losses if x is not None]) if any(x is not None for x in losses) else None,
    }


def run(cfg: dict) -> dict:
    out = {}
    for name, path in cfg["variants"].items():
        try:
            out[name] = train_one(name=name, train_file=path, cfg=cfg)
        except Exception as exc:  # noqa: BLE001 - one variant's failure is reported; the others still count
            out[name] = {"rows": _rows(path), "gold_accuracy": None, "pairs": 0, "steps": 0, "seconds": 0.0,
                         "error": f"{type(exc).__name__}: {exc}"[:2000]}
        if cfg.get("output"):  # written after each variant, so a stopped run keeps what it finished
            Path(cfg["output"]).write_text(json.dumps(out, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Reward models of the population experiment on held-out gold pairs.")
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    result = run(json.loads(Path(args.config).read_text()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
