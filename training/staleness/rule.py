"""The numbers of the reward-model check: pairs from rankings, their agreement with scores, and the stale rule."""

from __future__ import annotations

from training.models import ModelVersion

STALE_BELOW = 0.6
STALE_DROP = 0.1
MIN_PAIRS = 10  # fewer pairs than this: too few labels to tell


def ranking_pairs(ranking: list, keep: set[int]) -> list[tuple[int, int]]:
    """The ordered (better, worse) pairs of a ranking's groups, between responses in `keep`; ties give none."""
    groups = [[g] if not isinstance(g, list) else g for g in ranking or []]
    pairs = []
    for i, better in enumerate(groups):
        for worse in groups[i + 1:]:
            pairs.extend((a, b) for a in better for b in worse if a in keep and b in keep)
    return pairs


def pair_agreement(pairs: list[tuple[int, int]], scores: dict[int, float]) -> float | None:
    """The share of pairs whose better response the scores put higher (equal scores count half)."""
    scored = [(scores[a], scores[b]) for a, b in pairs if a in scores and b in scores]
    if not scored:
        return None
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in scored) / len(scored)


def eval_accuracy(model: ModelVersion) -> float | None:
    value = (model.metrics or {}).get("eval_accuracy")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def stale_verdict(*, agreement: float | None, pairs: int, model: ModelVersion) -> tuple[bool, str]:
    """(stale, why): below STALE_BELOW, or more than STALE_DROP below the model's own eval accuracy."""
    if agreement is None or pairs < MIN_PAIRS:
        return False, f"Too few labels to tell: {pairs} pair{'s' if pairs != 1 else ''}, at least {MIN_PAIRS} needed."
    own = eval_accuracy(model)
    if agreement < STALE_BELOW:
        return True, (f"Agrees with {agreement:.0%} of the newest labels, below {STALE_BELOW:.0%}: "
                      "collect comparisons of the current policy again and retrain the reward model.")
    if own is not None and agreement < own - STALE_DROP:
        return True, (f"Agrees with {agreement:.0%} of the newest labels against {own:.0%} on its own held-out "
                      "pairs: collect comparisons of the current policy again and retrain the reward model.")
    return False, "Agrees with the newest labels as well as expected."
