"""The weighted Bradley-Terry loss of training/pipelines/weighted_reward.py, on tiny tensors (no model download)."""
from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from training.pipelines.weighted_reward import WeightedPreferenceCollator, WeightedRewardTrainer, weighted_pair_loss

from .conftest import write_jsonl


def test_weighted_loss_scales_each_pair_and_weight_one_is_trls_loss():
    chosen, rejected = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 1.5, 0.0])
    margin = torch.tensor([0.25, 0.0, 0.5])
    per_pair = -nn.functional.logsigmoid(chosen - rejected - margin)
    weight = torch.tensor([1.0, 0.5, 0.0])
    assert weighted_pair_loss(chosen, rejected, weight, margin).item() == pytest.approx(
        ((weight * per_pair).sum() / 3).item()
    )
    trl_loss = -nn.functional.logsigmoid(chosen - rejected - margin).mean()
    assert weighted_pair_loss(chosen, rejected, torch.ones(3), margin).item() == pytest.approx(trl_loss.item())


class ScoreModel(nn.Module):
    """A 'reward model' whose reward for a sequence is a learned score of its first token."""

    def __init__(self):
        super().__init__()
        self.scores = nn.Parameter(torch.tensor([0.0, 1.0, -1.0, 0.5, 2.0, -0.5]))

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        return SimpleNamespace(logits=self.scores[input_ids[:, 0]].unsqueeze(-1))


def trainer_with(model) -> WeightedRewardTrainer:
    """The trainer's compute_loss without building a Trainer: only what RewardTrainer.compute_loss reads."""
    trainer = object.__new__(WeightedRewardTrainer)
    identity = SimpleNamespace(gather=lambda x: x, gather_for_metrics=lambda x: x)
    trainer.__dict__.update(
        model=model, args=SimpleNamespace(center_rewards_coefficient=None), accelerator=identity,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
    )
    return trainer


def test_compute_loss_honours_the_weight_column_and_a_zero_weight_pair_teaches_nothing():
    model = ScoreModel().eval()
    collator = WeightedPreferenceCollator(pad_token_id=0)
    examples = [
        {"chosen_ids": [1, 3], "rejected_ids": [2], "weight": 1.0},
        {"chosen_ids": [4], "rejected_ids": [5, 5], "weight": 0.0},
        {"chosen_ids": [3], "rejected_ids": [1], "weight": 0.5},
    ]
    batch = collator(examples)
    assert batch["weight"].tolist() == [1.0, 0.0, 0.5]
    loss = trainer_with(model).compute_loss(model, dict(batch))
    scores = model.scores.detach()
    expected = weighted_pair_loss(
        scores[[1, 4, 3]], scores[[2, 5, 1]], torch.tensor([1.0, 0.0, 0.5])
    )
    assert loss.item() == pytest.approx(expected.item())
    unweighted = trainer_with(model).compute_loss(model, {k: v for k, v in batch.items() if k != "weight"})
    assert unweighted.item() != pytest.approx(loss.item())  # without the column: TRL's plain mean
    loss.backward()
    assert model.scores.grad[4].item() == 0.0 and model.scores.grad[5].item() == 0.0  # weight 0: no gradient
    assert model.scores.grad[2].item() > 0  # the rejected of a weighted pair is pushed down


def test_preference_dataset_reads_the_weight_column(tmp_path):
    from training.pipelines.reward import RewardPipelineConfig, preference_dataset

    row = {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}],
           "rejected": [{"role": "assistant", "content": "b"}]}
    path = write_jsonl(tmp_path / "p.jsonl", [{**row, "weight": 0.75}, row])
    assert preference_dataset(path, use_weight=True)["weight"] == [0.75, 1.0]
    assert "weight" not in preference_dataset(path, use_weight=False).column_names
    assert RewardPipelineConfig.__dataclass_fields__["use_weight"].default is True
    bad = write_jsonl(tmp_path / "bad.jsonl", [{**row, "weight": 1.5}])
    with pytest.raises(ValueError, match="weight"):
        preference_dataset(bad, use_weight=True)
    assert json.loads(open(path).readline())["weight"] == 0.75
