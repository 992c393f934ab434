"""Score conversations with a reward model (active sampling). Pure: torch and transformers, no Django.

    python -m training.pipelines.score --config score.json
    python -m training.pipelines.score --model RM_DIR --input in.jsonl --output out.jsonl

input_file rows: {"id": <any JSON value>, "messages": [..., {"role": "assistant", "content": "..."}]},
the prompt plus the response to score. output_file rows, in input order: {"id": ..., "score": float}.
model_path is a reward.py model dir (AutoModelForSequenceClassification, num_labels=1); each
conversation is rendered by its chat template exactly as reward.score() does in training, and
truncated to max_length tokens. Prints JSON-lines progress (see common.py): start, a progress event
per batch with the rows scored so far, then done with the row count and the score range.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from training.pipelines import common
from training.pipelines.common import MAX_BATCH, MAX_TOKENS, ConfigError, meta


@dataclass(kw_only=True)
class ScorePipelineConfig:
    """Score conversations with a reward model."""

    model_path: str = field(metadata={"help": "Reward model directory (from the reward pipeline)."})
    input_file: str = field(metadata={"help": "JSONL of {\"id\", \"messages\"}: prompt plus the response to score."})
    output_file: str = field(metadata={"help": "JSONL to write: {\"id\", \"score\"} per input row, in order."})
    batch_size: int = field(default=16, metadata=meta("Conversations per forward pass.", ge=1, le=MAX_BATCH))
    max_length: int = field(default=512, metadata=meta(
        "Max tokens per conversation (truncated beyond).", ge=8, le=MAX_TOKENS))


def read_rows(path: str) -> list[dict]:
    """The input rows, each checked: an id and a non-empty list of {role, content} messages."""
    rows = common.read_jsonl(path, required=("id", "messages"))
    for lineno, row in enumerate(rows, 1):
        messages = row["messages"]
        if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        ):
            raise ValueError(f"{path}: row {lineno}: messages must be a non-empty list of {{role, content}}")
    return rows


def load_reward_model(model_path: str):
    """(model, tokenizer, device): the reward model in eval mode on the best device."""
    from transformers import AutoModelForSequenceClassification

    device = common.pick_device()
    tokenizer = common.load_tokenizer(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer, device


def score_batch(model, tokenizer, conversations: list[list[dict]], max_length: int) -> list[float]:
    """One forward pass: the reward of each conversation (rendered like reward.score, truncated)."""
    import torch

    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    device = next(model.parameters()).device
    batch = tokenizer(texts, return_tensors="pt", padding=True, padding_side="right", truncation=True,
                      max_length=max_length, add_special_tokens=False).to(device)
    with torch.no_grad():
        return model(**batch).logits[:, 0].float().tolist()


def run(cfg: ScorePipelineConfig) -> dict:
    rows = read_rows(cfg.input_file)
    model, tokenizer, device = load_reward_model(cfg.model_path)
    common.emit("start", kind="score", step=0, total=len(rows), resumed_from=None, device=device, bf16=False)
    scores: list[float] = []
    for start in range(0, len(rows), cfg.batch_size):
        chunk = rows[start:start + cfg.batch_size]
        scores.extend(score_batch(model, tokenizer, [r["messages"] for r in chunk], cfg.max_length))
        common.emit("progress", step=len(scores), total=len(rows), metrics={})
    out = Path(cfg.output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "w") as f:
        for row, value in zip(rows, scores):
            f.write(json.dumps({"id": row["id"], "score": value}) + "\n")
    tmp.replace(out)  # readers never see a half-written file
    metrics = {"rows": len(rows), "score_min": min(scores), "score_max": max(scores),
               "score_mean": sum(scores) / len(scores)}
    common.emit("done", metrics=common.numeric_metrics(metrics), output_file=str(out))
    return metrics


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score conversations with a reward model.")
    parser.add_argument("--config", help="JSON file with the fields of ScorePipelineConfig")
    parser.add_argument("--model", dest="model_path")
    parser.add_argument("--input", dest="input_file")
    parser.add_argument("--output", dest="output_file")
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--max-length", dest="max_length", type=int)
    args = parser.parse_args(argv)
    if args.config:
        return common.main(ScorePipelineConfig, run, ["--config", args.config])
    data = {k: v for k, v in vars(args).items() if k != "config" and v is not None}
    try:
        cfg = common.config_from_dict(ScorePipelineConfig, data)
    except ConfigError as exc:
        common.emit("error", message=str(exc), field=exc.field)
        return 2
    try:
        run(cfg)
    except Exception as exc:
        common.emit("error", message=f"{type(exc).__name__}: {exc}")
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
