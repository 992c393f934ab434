"""Direct preference optimisation with TRL's DPOTrainer.

    python -m training.pipelines.dpo --config run.json

train_file is the platform's `preference` export (see reward.py); the margin column is not used
by the DPO loss and is dropped. The reference model is the starting policy (model_path), or the
base weights with the adapter disabled under LoRA. TRL logs `rewards/margins` (the implicit
reward of chosen minus rejected, which should grow), `rewards/accuracies`, `rewards/chosen`,
`rewards/rejected`; the done event carries the last ones and `first_rewards/margins`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from training.pipelines import common
from training.pipelines.common import CommonConfig, ConfigError, meta, redefault
from training.pipelines.reward import preference_dataset


# The losses TRL 1.16's DPOTrainer computes (its DPOConfig takes a list; a run uses one).
# tests/training/pipelines/test_library_names.py checks them against the installed TRL.
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


@dataclass(kw_only=True)
class DpoPipelineConfig(CommonConfig):
    """Direct preference optimisation (DPO) on pairwise preferences."""

    train_file: str = field(metadata={"help": "Preference JSONL: prompt, chosen, rejected (margin ignored)."})
    eval_file: str | None = field(default=None, metadata={"help": "Optional held-out preference JSONL."})
    beta: float = field(default=0.1, metadata=meta(
        "DPO beta: strength of the implicit KL to the reference (IPO: its tau).", gt=0, le=10))
    loss_type: str = field(default="sigmoid", metadata=meta("TRL DPOTrainer loss.", choices=LOSS_TYPES))
    label_smoothing: float = field(default=0.0, metadata=meta(
        "Probability that a label is flipped (robust DPO, cDPO); EXO's epsilon.", ge=0, lt=0.5))
    learning_rate: float = redefault("learning_rate", 5e-6)

    def validate(self) -> None:
        super().validate()
        if self.loss_type == "exo_pair" and self.label_smoothing == 0.0:
            raise ConfigError("label_smoothing", "must be > 0 with loss_type exo_pair (EXO suggests 0.001)")


METRICS = ["rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected", "loss"]


def run(cfg: DpoPipelineConfig) -> dict:
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    device, bf16, resume = common.prepare_run(cfg, "dpo")
    tokenizer = common.load_tokenizer(cfg.model_path)
    model = AutoModelForCausalLM.from_pretrained(cfg.model_path, **common.model_load_kwargs(cfg, device, bf16))
    train = preference_dataset(cfg.train_file, use_margin=False)
    evaluation = preference_dataset(cfg.eval_file, use_margin=False) if cfg.eval_file else None
    args = DPOConfig(
        **common.trainer_kwargs(cfg, device, bf16),
        max_length=cfg.max_length,
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        label_smoothing=cfg.label_smoothing,
        eval_strategy="no",
    )
    trainer, metrics = common.train(
        DPOTrainer, kind="dpo", cfg=cfg, device=device, bf16=bf16, resume=resume, logged=METRICS,
        first=("rewards/margins",), model=model, args=args, train_dataset=train, eval_dataset=evaluation,
        processing_class=tokenizer,
    )
    if evaluation is not None:
        metrics.update(trainer.evaluate())
    model_dir = common.save_final(trainer, tokenizer, cfg.output_dir)
    return common.finish(cfg.output_dir, metrics, model_dir, step=trainer.state.global_step)


if __name__ == "__main__":
    raise SystemExit(common.main(DpoPipelineConfig, run))
