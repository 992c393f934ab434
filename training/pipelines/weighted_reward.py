"""TRL's RewardTrainer with a per-pair weight: the weighted Bradley-Terry loss.

A consensus preference export (`consensus=weight`) gives each pair a `weight` in [0, 1], the
Dawid-Skene confidence of its winner. Each pair's loss is scaled by it and the batch averaged:

    loss = mean_i( w_i · −log σ(r_chosen_i − r_rejected_i − margin_i) )

so a pair the labelers agreed on counts fully and a near coin flip counts little. Without a weight
column the trainer is TRL's own. Imports torch and TRL at the top: the reward pipeline imports
this module inside run(), never at import time.
"""
from __future__ import annotations

import torch
from torch import nn
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference


def weighted_pair_loss(rewards_chosen, rewards_rejected, weight, margin=None):
    """mean(w · −log σ(r_c − r_r − m)) over a batch of pairs (tensors of one value per pair)."""
    difference = rewards_chosen - rewards_rejected
    if margin is not None:
        difference = difference - margin
    return (weight * -nn.functional.logsigmoid(difference)).mean()


class WeightedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator, passing a `weight` column through as a float tensor."""

    def torch_call(self, examples):
        output = super().torch_call(examples)
        if "weight" in examples[0]:
            output["weight"] = torch.tensor([example["weight"] for example in examples], dtype=torch.float)
        return output


class WeightedRewardTrainer(RewardTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        collator = self.data_collator
        if type(collator) is DataCollatorForPreference:  # TRL's default: the same, plus the weight
            self.data_collator = WeightedPreferenceCollator(
                pad_token_id=collator.pad_token_id, pad_to_multiple_of=collator.pad_to_multiple_of
            )

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "weight" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "weight"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weight = inputs.pop("weight", None)
        if weight is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # TRL's pass runs the model once and records its metrics; the loss is then taken again, weighted.
        _, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        rewards_chosen, rewards_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        loss = weighted_pair_loss(
            rewards_chosen, rewards_rejected, weight.to(rewards_chosen.dtype), inputs.get("margin")
        )
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean((rewards_chosen + rewards_rejected) ** 2)
        return (loss, outputs) if return_outputs else loss
