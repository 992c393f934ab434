"""RLHF: optimise a policy against the platform's reward model with TRL's RLOO (default) or GRPO.

    python -m training.pipelines.rlhf --config run.json

prompts_file is JSONL of {"prompt": [messages]} (the last turn from the user). The policy starts
from model_path; reward_model_path is a reward.py model dir (AutoModelForSequenceClassification,
num_labels=1), which TRL runs on each prompt + sampled completion, rendered with the chat template.
The KL penalty against the starting policy (beta) is non-zero, so TRL loads a reference model and
logs `kl`; it also logs `entropy`, `reward` (mean) and `reward_std` on every logging step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from training.pipelines import common
from training.pipelines.common import CommonConfig, ConfigError


@dataclass(kw_only=True)
class RlhfPipelineConfig(CommonConfig):
    """RLHF (RLOO or GRPO) against a reward model."""

    reward_model_path: str = field(metadata={"help": "Reward model directory (from the reward pipeline)."})
    prompts_file: str = field(metadata={"help": "JSONL of {\"prompt\": [messages]}."})
    algorithm: Literal["rloo", "grpo"] = field(default="rloo", metadata={"help": "rloo (default) or grpo."})
    beta: float = field(default=0.05, metadata={"help": "KL coefficient against the starting policy (> 0)."})
    num_generations: int = field(default=4, metadata={"help": "Completions sampled per prompt (>= 2)."})
    max_completion_length: int = field(default=64, metadata={"help": "Max new tokens per completion."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold."})
    num_iterations: int = field(default=1, metadata={"help": "Optimisation passes per generation batch."})
    batch_size: int = field(default=8, metadata={"help": "Completions per device per step (a multiple of num_generations)."})
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate."})

    def validate(self) -> None:
        if not self.beta > 0:
            raise ConfigError("beta", "must be > 0: the run reports KL against the starting policy")
        if self.num_generations < 2:
            raise ConfigError("num_generations", "must be at least 2 (the baseline needs a group)")
        if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
            raise ConfigError("batch_size", "batch_size * gradient_accumulation_steps must be a multiple of "
                                            "num_generations")
        if not 0 < self.top_p <= 1:
            raise ConfigError("top_p", "must be in (0, 1]")
        if not self.temperature > 0:
            raise ConfigError("temperature", "must be > 0")


def prompt_dataset(path: str):
    from datasets import Dataset

    rows = common.read_jsonl(path, required=("prompt",))
    for i, row in enumerate(rows, 1):
        prompt = row["prompt"]
        if not isinstance(prompt, list) or not prompt or prompt[-1].get("role") != "user":
            raise ValueError(f"{path}:{i}: prompt must be a list of messages ending with a user turn")
    return Dataset.from_list([{"prompt": row["prompt"]} for row in rows])


def run(cfg: RlhfPipelineConfig) -> dict:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    device, bf16, resume = common.prepare_run(cfg, "rlhf")
    tokenizer = common.load_tokenizer(cfg.model_path)
    tokenizer.padding_side = "left"  # generation pads on the left
    policy = AutoModelForCausalLM.from_pretrained(cfg.model_path)
    reward_tokenizer = common.load_tokenizer(cfg.reward_model_path)
    reward_model = AutoModelForSequenceClassification.from_pretrained(cfg.reward_model_path, num_labels=1)
    reward_model.config.pad_token_id = reward_tokenizer.pad_token_id
    reward_model.eval()
    prompts = prompt_dataset(cfg.prompts_file)

    config_cls, trainer_cls = (GRPOConfig, GRPOTrainer) if cfg.algorithm == "grpo" else (RLOOConfig, RLOOTrainer)
    args = config_cls(
        **common.trainer_kwargs(cfg, device, bf16),
        beta=cfg.beta,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        num_iterations=cfg.num_iterations,
        log_completions=False,
    )
    trainer, metrics = common.train(
        trainer_cls, kind="rlhf", cfg=cfg, device=device, bf16=bf16, resume=resume,
        logged=["reward", "reward_std", "kl", "entropy", "loss"], first=("reward",), model=policy,
        reward_funcs=[reward_model], args=args, train_dataset=prompts, processing_class=tokenizer,
        reward_processing_classes=[reward_tokenizer],
    )
    tokenizer.padding_side = "right"
    model_dir = common.save_final(trainer, tokenizer, cfg.output_dir)
    return common.finish(cfg.output_dir, metrics, model_dir)


if __name__ == "__main__":
    raise SystemExit(common.main(RlhfPipelineConfig, run))
