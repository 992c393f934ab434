"""Supervised fine-tuning on demonstrations with TRL's SFTTrainer.

    python -m training.pipelines.sft --config run.json

train_file is the platform's `sft` export: JSONL of {"messages": [..., {"role": "assistant", ...}]}.
The loss covers the assistant turns only (TRL's assistant_only_loss, through the
`{% generation %}` markers of the chat template). See common.py for progress and outputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from training.pipelines import common
from training.pipelines.common import CommonConfig, ConfigError, redefault


@dataclass(kw_only=True)
class SftPipelineConfig(CommonConfig):
    """Supervised fine-tuning (SFT) on demonstrations."""

    train_file: str = field(metadata={"help": "JSONL of {\"messages\": [...]} ending in an assistant turn."})
    eval_file: str | None = field(default=None, metadata={"help": "Optional held-out JSONL, same format."})
    learning_rate: float = redefault("learning_rate", 2e-4)
    assistant_only_loss: bool = field(
        default=True, metadata={"help": "Train on assistant turns only (false: the whole chat)."})
    packing: bool = field(default=False, metadata={"help": "Pack several chats into one sequence."})

    def validate(self) -> None:
        super().validate()
        if not self.train_file:
            raise ConfigError("train_file", "must not be empty")


def _dataset(path: str):
    from datasets import Dataset

    rows = common.read_jsonl(path, required=("messages",))
    for i, row in enumerate(rows, 1):
        if not row["messages"] or row["messages"][-1].get("role") != "assistant":
            raise ValueError(f"{path}:{i}: the last message must be from the assistant")
    return Dataset.from_list([{"messages": row["messages"]} for row in rows])


def run(cfg: SftPipelineConfig) -> dict:
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    device, bf16, resume = common.prepare_run(cfg, "sft")
    tokenizer = common.load_tokenizer(cfg.model_path)
    model = AutoModelForCausalLM.from_pretrained(cfg.model_path, **common.model_load_kwargs(cfg, device, bf16))
    train = _dataset(cfg.train_file)
    evaluation = _dataset(cfg.eval_file) if cfg.eval_file else None
    args = SFTConfig(
        **common.trainer_kwargs(cfg, device, bf16),
        max_length=cfg.max_length,
        assistant_only_loss=cfg.assistant_only_loss,
        packing=cfg.packing,
        eval_strategy="no",
    )
    trainer, metrics = common.train(
        SFTTrainer, kind="sft", cfg=cfg, device=device, bf16=bf16, resume=resume,
        logged=["loss", "mean_token_accuracy", "entropy"], model=model, args=args, train_dataset=train,
        eval_dataset=evaluation, processing_class=tokenizer,
    )
    if evaluation is not None:
        metrics.update(trainer.evaluate())
    model_dir = common.save_final(trainer, tokenizer, cfg.output_dir)
    return common.finish(cfg.output_dir, metrics, model_dir, step=trainer.state.global_step)


if __name__ == "__main__":
    raise SystemExit(common.main(SftPipelineConfig, run))
