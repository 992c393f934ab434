"""The names the configs offer, checked against the installed transformers and TRL.

The pipelines write the scheduler and loss names into their field metadata rather than import
transformers or TRL (the web app imports the configs cheaply), so an upgrade that drops or
renames one would only show on a worker. These tests make it fail here instead.
"""
from __future__ import annotations

import ast
import inspect

import pytest

from training.pipelines import common, dpo, rlhf


def test_every_offered_scheduler_is_one_transformers_builds_from_its_name_alone():
    import torch
    from transformers import SchedulerType, get_scheduler

    names = {s.value for s in SchedulerType}
    assert set(common.LR_SCHEDULERS) <= names, set(common.LR_SCHEDULERS) - names
    for name in common.LR_SCHEDULERS:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=common.POLYNOMIAL_LR_END * 10)
        # What Trainer passes: warmup and total steps, no lr_scheduler_kwargs.
        scheduler = get_scheduler(name, optimizer, num_warmup_steps=2, num_training_steps=10)
        for _ in range(10):
            optimizer.step()
            scheduler.step()


def test_schedulers_left_out_need_what_our_pipelines_do_not_give():
    """A guard on the other side: if transformers makes one of these work by name, offer it."""
    from transformers import TrainingArguments

    with pytest.raises(ValueError, match="eval"):
        TrainingArguments(output_dir="unused", lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="no")
    assert "reduce_lr_on_plateau" not in common.LR_SCHEDULERS


def trl_dpo_losses() -> set[str]:
    """Every name DPOTrainer's loss compares `loss_type` with (`loss_type == "sigmoid"`, ...)."""
    from trl.trainer import dpo_trainer

    found = set()
    for node in ast.walk(ast.parse(inspect.getsource(dpo_trainer))):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "loss_type":
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, ast.Eq) and isinstance(right, ast.Constant) and isinstance(right.value, str):
                    found.add(right.value)
    return found


def test_every_offered_dpo_loss_is_one_trls_dpo_trainer_computes():
    accepted = trl_dpo_losses()
    assert len(accepted) >= 10, "the parse of TRL's DPOTrainer found too few losses: update this test"
    assert set(dpo.LOSS_TYPES) <= accepted, set(dpo.LOSS_TYPES) - accepted
    assert len(set(dpo.LOSS_TYPES)) == len(dpo.LOSS_TYPES)


def test_dpo_config_takes_each_loss_as_the_pipeline_passes_it():
    from trl import DPOConfig

    for name in dpo.LOSS_TYPES:
        config = DPOConfig(output_dir="unused", loss_type=[name], report_to=[], bf16=False, use_cpu=True)
        assert config.loss_type == [name]


def test_every_rlhf_algorithm_has_its_trl_trainer():
    import trl

    choices = common.config_fields(rlhf.RlhfPipelineConfig)["algorithm"]["choices"]
    for name in choices:
        assert hasattr(trl, f"{name.upper()}Trainer") and hasattr(trl, f"{name.upper()}Config"), name
