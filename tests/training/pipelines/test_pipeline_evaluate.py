"""Bradley-Terry, win rates and the synthetic gold preference, on small known inputs."""
from __future__ import annotations

import math

import pytest

from training.pipelines import synthetic
from training.pipelines.evaluate import bradley_terry, simulate_bradley_terry, win_rate, wilson_interval


def test_bradley_terry_two_players_matches_closed_form():
    scores = bradley_terry([("a", "b"), ("a", "b"), ("b", "a")], prior=0)
    assert scores["a"] - scores["b"] == pytest.approx(math.log(2), abs=1e-6)
    assert scores["a"] + scores["b"] == pytest.approx(0, abs=1e-9)


def test_bradley_terry_ties_count_half_and_prior_keeps_unbeaten_finite():
    tied = bradley_terry([("a", "b", 0.5)] * 4, prior=0)
    assert tied["a"] == pytest.approx(tied["b"], abs=1e-9)
    unbeaten = bradley_terry([("a", "b")] * 5)
    assert math.isfinite(unbeaten["a"]) and unbeaten["a"] > unbeaten["b"]


def test_bradley_terry_recovers_known_scores():
    truth = {"x": 1.0, "y": 0.0, "z": -1.0}
    fitted = bradley_terry(simulate_bradley_terry(truth, 3000, seed=1), prior=0)
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, abs=0.15)


def test_win_rate_counts_ties_as_half_with_wilson_interval():
    result = win_rate(wins=30, losses=15, ties=5)
    assert result["win_rate"] == pytest.approx(0.65)
    assert result["low"] == pytest.approx(0.5114, abs=1e-3)
    assert result["high"] == pytest.approx(0.7671, abs=1e-3)
    assert result["n"] == 50
    perfect = win_rate(10, 0)
    assert perfect["low"] == pytest.approx(0.7225, abs=1e-3) and perfect["high"] == pytest.approx(1.0)
    assert win_rate(0, 0, 10)["win_rate"] == 0.5
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(1 - high)


def test_gold_score_prefers_positive_on_topic_answers():
    prompt = [{"role": "user", "content": "Write a happy sentence about cats."}]
    good, neutral, bad = "Cats are lovely and warm.", "Cats are small.", "Cats are sad and cold."
    assert synthetic.gold_score(prompt, good) > synthetic.gold_score(prompt, neutral) > synthetic.gold_score(prompt, bad)
    assert synthetic.gold_score(prompt, "") < synthetic.gold_score(prompt, neutral)
    assert synthetic.gold_prefers(prompt, good, bad) and not synthetic.gold_prefers(prompt, bad, good)
    assert synthetic.gold_compare(prompt, good, bad) == {"winner": "a", "strength": "much_better", "margin": 3.0}
    assert synthetic.gold_compare(prompt, neutral, neutral)["winner"] is None


def test_synthetic_rows_are_in_the_export_formats():
    for row in synthetic.preference_rows(20, seed=0):
        assert row["prompt"][-1]["role"] == "user" and row["margin"] > 0
        assert synthetic.gold_prefers(row["prompt"], row["chosen"][0]["content"], row["rejected"][0]["content"])
    assert all(r["messages"][-1]["role"] == "assistant" for r in synthetic.sft_rows(5))
