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
from training.pipelines import common, vllm_sampling
from training.pipelines.common import MAX_BATCH, CommonConfig, ConfigError, meta, redefault


@dataclass(kw_only=True)
class RlhfPipelineConfig(CommonConfig):
    """RLHF (RLOO or GRPO) against a reward model."""

    reward_model_path: str = field(metadata={"help": "Reward model directory (from the reward pipeline)."})
    prompts_file: str = field(metadata={"help": "JSONL of {\"prompt\": [messages]}."})
    algorithm: str = field(default="rloo", metadata=meta("rloo (default) or grpo.", choices=("rloo", "grpo")))
    beta: float = field(default=0.05, metadata=meta(
        "KL coefficient against the starting policy (> 0: the run reports KL).", gt=0, le=10))
    num_generations: int = field(default=4, metadata=meta(
        "Completions sampled per prompt (the baseline needs a group of 2 or more).", ge=2, le=64))
    max_completion_length: int = field(default=64, metadata=meta("Max new tokens per completion.", ge=1, le=8192))
    temperature: float = field(default=1.0, metadata=meta("Sampling temperature.", gt=0, le=100))
    top_p: float = field(default=1.0, metadata=meta("Nucleus sampling threshold.", gt=0, le=1))
    num_iterations: int = field(default=1, metadata=meta("Optimisation passes per generation batch.", ge=1, le=100))
    batch_size: int = field(default=8, metadata=meta(
        "Completions per device per step (a multiple of num_generations).", ge=1, le=MAX_BATCH))
    learning_rate: float = redefault("learning_rate", 1e-5)

    def validate(self) -> None:
        super().validate()
        if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
            raise ConfigError("batch_size", "batch_size * gradient_accumulation_steps must be a multiple of "
                                            "num_generations")


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
    policy = AutoModelForCausalLM.from_pretrained(cfg.model_path, **common.model_load_kwargs(cfg, device, bf16))
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
        **vllm_sampling.trl_vllm_kwargs(vllm_sampling.use_vllm()),  # rollouts in colocated vLLM on a GPU
    )
    trainer, metrics = common.train(
        trainer_cls, kind="rlhf", cfg=cfg, device=device, bf16=bf16, resume=resume,
        logged=["reward", "reward_std", "kl", "entropy", "loss"], first=("reward",), model=policy,
        reward_funcs=[reward_model], args=args, train_dataset=prompts, processing_class=tokenizer,
        reward_processing_classes=[reward_tokenizer],
    )
    tokenizer.padding_side = "right"
    model_dir = common.save_final(trainer, tokenizer, cfg.output_dir)
    return common.finish(cfg.output_dir, metrics, model_dir, step=trainer.state.global_step)


if __name__ == "__main__":
    raise SystemExit(common.main(RlhfPipelineConfig, run))
