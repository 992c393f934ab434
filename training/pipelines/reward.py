"""Reward model (Bradley-Terry) on pairwise preferences with TRL's RewardTrainer.

    python -m training.pipelines.reward --config run.json

train_file is the platform's `preference` export: JSONL of
{"prompt": [messages], "chosen": [{"role": "assistant", ...}], "rejected": [...], "margin": float}.
The margin (from the labeler's strength) goes through to TRL, whose loss is
-log sigmoid(r_chosen - r_rejected - margin). A `weight` column in [0, 1] (a consensus export's
confidence) scales each pair's loss: weighted_reward.py, a RewardTrainer subclass. A held-out split (eval_fraction, or eval_file)
gives the pairwise accuracy reported as `eval_accuracy` in metrics.json and the done event. A tie
exported as two pairs, one each way (the export's `ties`), trains like any pair (the two losses
pull the rewards together) but is left out of `eval_accuracy` and counted as `eval_tied_pairs`.
The model dir loads with AutoModelForSequenceClassification (num_labels=1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from training.pipelines import common
from training.pipelines.common import CommonConfig, ConfigError, meta, redefault


@dataclass(kw_only=True)
class RewardPipelineConfig(CommonConfig):
    """Reward model training on pairwise preferences."""

    train_file: str = field(metadata={"help": "Preference JSONL: prompt, chosen, rejected, optional margin."})
    eval_file: str | None = field(default=None, metadata={"help": "Held-out preference JSONL (else a split)."})
    eval_fraction: float = field(default=0.1, metadata=meta(
        "Fraction of train_file held out when no eval_file.", ge=0, lt=1))
    use_margin: bool = field(default=True, metadata={"help": "Pass the margin column to the loss."})
    margin_scale: float = field(default=1.0, metadata=meta("Multiply every margin by this.", ge=0, le=100))
    use_weight: bool = field(default=True, metadata={
        "help": "Scale each pair's loss by its weight column when the data has one (a consensus export)."})
    center_rewards_coefficient: float | None = field(
        default=None, metadata=meta("Penalty pushing rewards to mean zero (TRL suggests 0.01); null: off.",
                                    ge=0, le=10))
    learning_rate: float = redefault("learning_rate", 1e-4)

    def validate(self) -> None:
        super().validate()
        if self.eval_file is None and self.eval_fraction == 0.0:
            raise ConfigError("eval_fraction", "must be > 0 when there is no eval_file")


def preference_dataset(path: str, use_margin: bool = True, margin_scale: float = 1.0, use_weight: bool = False):
    """A datasets.Dataset of conversational preference pairs (prompt, chosen, rejected[, margin][, weight]).

    With use_weight, a file where any row has a `weight` gives every row one (1.0 where it is missing).
    """
    from datasets import Dataset

    rows = common.read_jsonl(path, required=("prompt", "chosen", "rejected"))
    weighted = use_weight and any("weight" in row for row in rows)
    out = []
    for i, row in enumerate(rows, 1):
        for key in ("prompt", "chosen", "rejected"):
            if not isinstance(row[key], list) or not row[key]:
                raise ValueError(f"{path}:{i}: {key} must be a non-empty list of messages")
        item = {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
        if use_margin:
            item["margin"] = float(row.get("margin", 0.0)) * margin_scale
        if weighted:
            weight = row.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
                raise ValueError(f"{path}:{i}: weight must be a number from 0 to 1")
            item["weight"] = float(weight)
        out.append(item)
    return Dataset.from_list(out)


def score(model, tokenizer, conversations: list[list[dict]], batch_size: int = 32) -> list[float]:
    """Reward of each conversation (prompt + response messages), rendered by the chat template."""
    import torch

    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    device = next(model.parameters()).device
    scores: list[float] = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True,
                              padding_side="right", add_special_tokens=False).to(device)
            scores.extend(model(**batch).logits[:, 0].float().tolist())
    return scores


def tied_rows(dataset, within=None) -> list[int]:
    """Indexes of the margin-0 rows of `dataset` whose reverse (same prompt, chosen and rejected swapped) is a
    margin-0 row of `within`.

    Those are a tie exported as two pairs (the preference export's `ties`): half of them is
    "right" whatever the model does, so the accuracy below leaves them out. Two labelers who
    disagree also give a pair and its reverse, but with the margins of their strengths, so they
    stay. Without a margin column (use_margin false) nothing tells the two apart: no row is a tie.
    """
    import json

    within = dataset if within is None else within
    if "margin" not in dataset.column_names or "margin" not in within.column_names:
        return []

    def at_zero(data) -> list[int]:
        return [i for i, margin in enumerate(data["margin"]) if margin == 0]

    ours = at_zero(dataset)
    theirs = at_zero(within) if ours else []
    if not theirs:
        return []

    def keys(data, rows, first, second) -> list[str]:
        prompts, a, b = data["prompt"], data[first], data[second]
        return [json.dumps([prompts[i], a[i], b[i]], sort_keys=True) for i in rows]

    seen = set(keys(within, theirs, "chosen", "rejected"))
    return [i for i, k in zip(ours, keys(dataset, ours, "rejected", "chosen")) if k in seen]


def pairwise_accuracy(model, tokenizer, dataset) -> float | None:
    """Share of pairs whose chosen response gets the higher reward (equal rewards count half)."""
    was_training = model.training
    model.eval()
    chosen = score(model, tokenizer, [p + c for p, c in zip(dataset["prompt"], dataset["chosen"])])
    rejected = score(model, tokenizer, [p + r for p, r in zip(dataset["prompt"], dataset["rejected"])])
    model.train(was_training)
    wins = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected))
    return wins / len(chosen) if chosen else None


def run(cfg: RewardPipelineConfig) -> dict:
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig

    from training.pipelines.weighted_reward import WeightedRewardTrainer

    device, bf16, resume = common.prepare_run(cfg, "reward")
    tokenizer = common.load_tokenizer(cfg.model_path)
    model = AutoModelForSequenceClassification.from_pretrained(
        cfg.model_path, num_labels=1, **common.model_load_kwargs(cfg, device, bf16))
    model.config.pad_token_id = tokenizer.pad_token_id
    data = preference_dataset(cfg.train_file, cfg.use_margin, cfg.margin_scale, cfg.use_weight)
    if cfg.eval_file:
        train, held_out = data, preference_dataset(cfg.eval_file, cfg.use_margin, cfg.margin_scale, cfg.use_weight)
    else:
        split = data.train_test_split(test_size=cfg.eval_fraction, seed=cfg.seed)
        train, held_out = split["train"], split["test"]
    args = RewardConfig(
        **common.trainer_kwargs(cfg, device, bf16),
        max_length=cfg.max_length,
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        eval_strategy="no",
    )
    trainer, metrics = common.train(
        WeightedRewardTrainer, kind="reward", cfg=cfg, device=device, bf16=bf16, resume=resume,
        logged=["loss", "accuracy", "margin"], lora_task="SEQ_CLS", model=model, args=args,
        train_dataset=train, eval_dataset=held_out, processing_class=tokenizer,
    )
    metrics.update(trainer.evaluate())  # eval_loss, eval_margin, ... on the held-out pairs
    # TRL's eval accuracy is a mean of batch means, ties included; report the exact share of the
    # held-out pairs that have a better side (a tie's two pairs are counted apart, eval_tied_pairs).
    tied = set(tied_rows(held_out, within=data))
    ordered = held_out.select([i for i in range(len(held_out)) if i not in tied]) if tied else held_out
    metrics["eval_accuracy"] = pairwise_accuracy(trainer.model, tokenizer, ordered)
    metrics["eval_pairs"] = len(ordered)
    metrics["eval_tied_pairs"] = len(tied)
    model_dir = common.save_final(trainer, tokenizer, cfg.output_dir)
    return common.finish(cfg.output_dir, metrics, model_dir, step=trainer.state.global_step)


if __name__ == "__main__":
    raise SystemExit(common.main(RewardPipelineConfig, run))
