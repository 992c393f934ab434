"""Evaluation helpers: gold-score evaluation on the synthetic task, Bradley-Terry, win rates.

Pure Python except gold_evaluate (which samples from a model through generate.py).

    bradley_terry([("a", "b", 1.0), ("b", "c", 0.5), ("a", "c")])  -> {"a": 0.9, "b": -0.1, "c": -0.8}
    win_rate(wins=30, losses=15, ties=5)  -> {"win_rate": 0.65, "low": 0.51, "high": 0.77, "n": 50, ...}
"""
from __future__ import annotations

import math
import random
from collections import defaultdict

from training.pipelines import synthetic

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; successes may be fractional (ties as half)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(wins: int, losses: int, ties: int = 0, z: float = Z95) -> dict:
    """Win rate counting ties as half a win, with a 95% Wilson interval (low, high)."""
    n = wins + losses + ties
    score = wins + 0.5 * ties
    low, high = wilson_interval(score, n, z)
    return {"win_rate": score / n if n else 0.5, "low": low, "high": high, "n": n,
            "wins": wins, "losses": losses, "ties": ties}


def win_rate_from_outcomes(outcomes: list[float]) -> dict:
    """outcomes: 1 (A wins), 0 (B wins), 0.5 (tie), one per comparison."""
    wins = sum(1 for o in outcomes if o == 1)
    losses = sum(1 for o in outcomes if o == 0)
    return win_rate(wins, losses, len(outcomes) - wins - losses)


def bradley_terry(outcomes, iterations: int = 1000, prior: float = 0.5, tol: float = 1e-10) -> dict[str, float]:
    """Fit Bradley-Terry strengths from pairwise outcomes.

    outcomes: iterable of (a, b) meaning a beat b, or (a, b, s) with s the score of a
    (1 win, 0 loss, 0.5 tie), or (a, b, s, w): that outcome w times (a bootstrap's counts). Returns {player: score} on the logit scale, mean zero, so that
    P(i beats j) = sigmoid(score_i - score_j). `prior` adds that many virtual ties of every player
    against an average opponent, which keeps unbeaten or winless players finite. Uses Hunter's
    (2004) minorise-maximise iterations.
    """
    wins: dict[str, float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    players: set[str] = set()
    for outcome in outcomes:
        a, b = outcome[0], outcome[1]
        s = outcome[2] if len(outcome) > 2 else 1.0
        w = outcome[3] if len(outcome) > 3 else 1.0
        if a == b or w <= 0:
            continue
        players.update((a, b))
        wins[a] += s * w
        wins[b] += (1.0 - s) * w
        games[(a, b)] += w
        games[(b, a)] += w
    if not players:
        return {}
    opponents: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (a, b), n in games.items():
        opponents[a].append((b, n))
    strength = {p: 1.0 for p in players}
    for _ in range(iterations):
        new = {}
        for p in players:
            # virtual games: `2 * prior` games against a player of strength 1, half of them won
            denom = sum(n / (strength[p] + strength[q]) for q, n in opponents[p]) + 2 * prior / (strength[p] + 1.0)
            new[p] = (wins[p] + prior) / denom
        log_mean = sum(math.log(v) for v in new.values()) / len(new)
        new = {p: v / math.exp(log_mean) for p, v in new.items()}
        change = max(abs(math.log(new[p]) - math.log(strength[p])) for p in players)
        strength = new
        if change < tol:
            break
    return {p: math.log(v) for p, v in sorted(strength.items())}


def bradley_terry_intervals(outcomes, rounds: int = 1000, seed: int = 0, level: float = 0.95,
                            tol: float = 1e-6) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of Bradley-Terry scores, as Chatbot Arena reports its ratings: refit on
    `rounds` resamples (with replacement) of the outcomes; each player's interval is the central
    `level` share of its refitted scores.

    The outcomes are counted once into distinct (a, b, score) cells, so a resample is a multinomial
    draw of cell counts and each refit costs the number of cells, not the number of outcomes.
    """
    import numpy as np

    cells: dict[tuple, int] = defaultdict(int)
    for outcome in outcomes:
        a, b = outcome[0], outcome[1]
        if a != b:
            cells[(a, b, outcome[2] if len(outcome) > 2 else 1.0)] += 1
    if not cells:
        return {}
    keys = list(cells)
    counts = np.array([cells[k] for k in keys], dtype=float)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = defaultdict(list)
    for draw in rng.multinomial(int(counts.sum()), counts / counts.sum(), size=rounds):
        scores = bradley_terry([(*key, weight) for key, weight in zip(keys, draw) if weight], tol=tol)
        for player, score in scores.items():
            samples[player].append(score)
    tail = (1.0 - level) / 2
    return {
        player: (float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail)))
        for player, values in samples.items()
    }


def gold_scores(prompts: list, responses: list[list[str]]) -> list[float]:
    """The gold score of every response (flattened)."""
    return [synthetic.gold_score(p, r) for p, rs in zip(prompts, responses) for r in rs]


def gold_evaluate(model_path: str, n_prompts: int = 64, seed: int = 0, temperature: float = 0.7,
                  top_p: float = 0.95, max_new_tokens: int = 32) -> dict:
    """Mean gold score of one sampled response per synthetic prompt."""
    from training.pipelines.generate import generate

    prompts = synthetic.make_prompts(n_prompts, seed=seed)
    responses = generate(model_path, prompts, k=1, temperature=temperature, top_p=top_p,
                         max_new_tokens=max_new_tokens, seed=seed, max_rounds=1)
    scores = gold_scores(prompts, [r or [""] for r in responses])
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / max(1, len(scores) - 1))
    return {"gold_mean": mean, "gold_std": std, "n": len(scores)}


def gold_win_rate(prompts: list, responses_a: list[str], responses_b: list[str]) -> dict:
    """Win rate of A over B judged by the gold function, one response each per prompt."""
    outcomes = []
    for prompt, a, b in zip(prompts, responses_a, responses_b):
        sa, sb = synthetic.gold_score(prompt, a), synthetic.gold_score(prompt, b)
        outcomes.append(1.0 if sa > sb else 0.0 if sa < sb else 0.5)
    return win_rate_from_outcomes(outcomes)


def simulate_bradley_terry(true_scores: dict[str, float], n: int, seed: int = 0) -> list[tuple[str, str, float]]:
    """Random comparisons drawn from known Bradley-Terry scores (for tests and sanity checks)."""
    rng = random.Random(seed)
    names = sorted(true_scores)
    out = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        p = 1 / (1 + math.exp(true_scores[b] - true_scores[a]))
        out.append((a, b, 1.0 if rng.random() < p else 0.0))
    return out
